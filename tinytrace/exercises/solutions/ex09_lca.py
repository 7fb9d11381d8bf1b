"""Lesson 9: loss change allocation, first order and by Simpson's rule."""


def lca_first_order(grad, theta_before, theta_after):
    """Exercise 9.1: the reference solution (the exercise's docstring is in exercises/)."""
    # A_i = g_i * (theta_after_i - theta_before_i): the gradient at the start of the step
    return grad * (theta_after - theta_before)


def lca_simpson(grad_fn, theta_before, theta_after):
    """Exercise 9.2: the reference solution (the exercise's docstring is in exercises/)."""
    # the gradient averaged along the segment by Simpson's rule (ends and midpoint,
    # weights 1, 4, 1 over 6), exact when the gradient is a cubic along the segment
    delta = theta_after - theta_before
    mid = theta_before + 0.5 * delta
    mean_grad = (grad_fn(theta_before) + 4 * grad_fn(mid) + grad_fn(theta_after)) / 6
    return mean_grad * delta
