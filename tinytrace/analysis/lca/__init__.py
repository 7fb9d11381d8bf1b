"""Loss change allocation (Lan, Liu, Zhou & Yosinski, NeurIPS 2019), online.

``Tracker`` wraps a training loop (in place of ``optimizer.step()``) and splits every
step's change of a fixed loss into one term per parameter; ``Allocation`` holds what it
recorded and aggregates it per tensor, layer, neuron and gate; ``report`` has the
synchronisation rule, a text summary and figures::

    tracker = tt.lca.Tracker(model, loss_fn, (x_train, y_train), optimizer)
    ...                                    # training loop, tracker.step() for the step
    print(tt.lca.summary(tracker.train))
"""
from .allocation import Allocation, Conservation
from .layout import Layout
from .report import (OVERALL_ERROR_LIMIT, Synchronisation, learning_events, plot_conservation,
                     plot_gates, plot_helped, plot_layers, summary, synchronisation)
from .inputs import LCAError, LCASet
from .tracker import METHODS, Tracker

__all__ = ["Tracker", "Allocation", "Conservation", "Layout", "LCAError", "LCASet", "METHODS",
           "Synchronisation", "synchronisation", "learning_events", "summary", "plot_layers",
           "plot_helped", "plot_conservation", "plot_gates", "OVERALL_ERROR_LIMIT"]
