"""Privacy budget: pure accounting/composition functions and the stateful per-dataset ledger.

Every DP run charges its accounted ε and δ to its dataset; charges compose by basic composition (they add).
``privacy.max_epsilon_per_run`` and ``privacy.dataset_epsilon_cap`` are enforced before training.
"""

from appliance.budget.composition import Spent, compose_basic, refusal, remaining
from appliance.budget.ledger import BudgetLedger, BudgetView

__all__ = ["BudgetLedger", "BudgetView", "Spent", "compose_basic", "refusal", "remaining"]
