"""The analysis layer: tools that read training through the public core API only.

Each tool is one module, re-exported at the top level (``tt.trace``, ``tt.lca``,
``tt.fixed_points``, ``tt.explicit``). They use what a user could call too: the recorded
``Graph``, ``tt.grad`` / ``backward`` with its ``hook`` and ``block``, modules and their
named parameters, optimizers. The core never imports this package.
"""
from . import explicit, fixed_points, lca, trace
