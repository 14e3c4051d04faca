"""Privacy budget: pure accounting/composition functions and the stateful per-record ledger.

Every DP run charges its accounted ε and δ to every record it trained on (keyed by the record's redacted,
normalised text, or by subject with ``seeds import --subject-field``), whatever the dataset's name; charges
compose by basic composition (they add). ``privacy.max_epsilon_per_run``, ``privacy.dataset_epsilon_cap``
(per record or subject) and ``privacy.max_total_delta`` (Σδ per record or subject) are enforced before training.
"""

from appliance.budget.composition import Spent, compose_basic, refusal, remaining
from appliance.budget.ledger import BudgetLedger, BudgetView

__all__ = ["BudgetLedger", "BudgetView", "Spent", "compose_basic", "refusal", "remaining"]
