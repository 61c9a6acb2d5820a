"""Can the gradients of this environment be trusted? The checks behind ``diffpg check``.

A pathwise (backprop-through-time) gradient is only as good as the derivatives
of one step, and only as useful as its variance at the horizon trained on.
Four checks, from the most local to the most global, one module each:

1. ``steps``: autodiff against finite differences, one step at a time, at
   random states reached from ``reset``;
2. ``steps``: non-finite states, next states and step derivatives;
3. ``agreement``: pathwise against score-function gradients, a paired z-test
   per horizon (they estimate the same ∇θ J_H, so a difference is bias);
4. ``growth``: how each estimator's variance grows with the horizon (chaos), and an F test of
   whether the pathwise variance is significantly above the score function's;

and ``termination`` counts the rollouts that end early, a cause of pathwise bias;
``action_gradient`` names a return with no gradient with respect to the actions (an alive bonus);
``mjx`` adds, for an MJX environment, the constraint solve's convergence and float32 at contact.

``report.check`` runs them into a ``Report`` with a recommendation; ``settings`` holds what they are
asked (``Settings``) and what they say (``Finding``). They start with the
protocol check every estimator makes (``diffpg.estimators.validate``); the
figure is drawn by ``diffpg.report.horizons.trust_plot`` (``diffpg check``).
"""
from ..estimators.validate import check_policy, check_protocol
from .action_gradient import action_gradient_findings
from .agreement import agreement_findings, estimator_sweep, z_threshold
from .growth import growth_rates, noisier, variance_dof, variance_findings, variance_threshold
from .report import Report, check, recommend
from .settings import OK, PROBLEM, Finding, Settings
from .steps import finite_difference_findings, nonfinite_findings, random_states
from .termination import ended_fractions

__all__ = ["OK", "PROBLEM", "Finding", "Report", "Settings", "action_gradient_findings", "agreement_findings", "check",
           "check_policy", "check_protocol", "ended_fractions", "estimator_sweep", "finite_difference_findings",
           "growth_rates", "noisier", "nonfinite_findings", "random_states", "recommend", "variance_dof",
           "variance_findings", "variance_threshold", "z_threshold"]
