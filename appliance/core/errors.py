"""The project's exception root and the few exceptions shared across components.

Every exception the appliance raises on purpose derives from `ApplianceError`; where one
resembles a builtin it inherits from that too, so callers can catch either.
"""


class ApplianceError(Exception):
    """Root of every exception raised on purpose by the appliance."""


class ConfigError(ApplianceError, ValueError):
    """A configuration file or value was refused.

    `problems` holds one human-readable line per problem, each naming the file, the key
    and the reason.
    """

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ValueProblems(ApplianceError, ValueError):
    """One value with several things wrong: `problems` holds each reason, so a refusal names
    all of them (an AE title that is too long *and* holds a backslash says both). Raised by
    the schema's validators; the loader reports one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ComponentFailure(ApplianceError, RuntimeError):
    """A component found itself unhealthy; the supervisor will restart it."""


class EventContractError(ApplianceError, ValueError):
    """An event that breaks its declaration in appliance.core.event_topics: an unknown topic,
    a missing or unknown payload field, or a value outside the declared choices."""
