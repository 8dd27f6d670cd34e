"""Model cards: the TOML schema engine, the card's tables, cross-key checks, overrides and the
typed :class:`ModelCard` that owns its fit and decision settings.

- :mod:`.schema` - a card table is a dataclass; builds and checks it ("did you mean" errors);
- :mod:`.sections` - the tables (``[card]``, ``[data]``, ``[experiment]``, ... ``[monitoring]``);
- :mod:`.fit_settings` - ``[fit]`` and the one merge of sampler settings with their defaults;
- :mod:`.semantics` - checks across keys, all run when the card loads;
- :mod:`.overrides` - ``--set key=value`` on a card;
- :mod:`.model_card` - :class:`ModelCard`, :func:`load_card`: ``card.fit()``, ``card.decide(fit)``.
"""

from bayesdecide.card.fit_settings import QUICK, FitSettings, check_fit_settings
from bayesdecide.card.model_card import ModelCard, card_from_dict, load_card
from bayesdecide.card.overrides import apply_overrides, parse_assignments
from bayesdecide.card.sections import DataSource, simulate
from bayesdecide.errors import CardError

__all__ = [
    "QUICK",
    "CardError",
    "DataSource",
    "FitSettings",
    "ModelCard",
    "apply_overrides",
    "card_from_dict",
    "check_fit_settings",
    "load_card",
    "parse_assignments",
    "simulate",
]
