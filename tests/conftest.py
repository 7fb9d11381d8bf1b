"""Shared test settings: one hypothesis profile (no deadlines: 2-core CI machines are
slow and timing must never fail a correctness test)."""
import os

import matplotlib
from hypothesis import HealthCheck, settings

matplotlib.use("Agg")

# The suite multiplies small matrices, where OpenBLAS threads cost far more than they save
# (on a busy 2-core machine, ~60x). One thread, unless the caller chose a count.
if not any(v in os.environ for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")):
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=1, user_api="blas")
    except ImportError:
        pass

settings.register_profile("default", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
