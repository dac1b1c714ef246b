"""Configuration: the typed schema composed from each component's section (`schema.py`, built
from `base.py`), the TOML loader, and the editor behind `appliance config`.

Nothing is imported here: a component's section (`appliance/print/config.py`, ...) imports
`appliance.config.base`, which must not pull in the schema that composes those sections.
"""
