"""User-facing errors: each prints as one line that says what, where, and what to do."""


class UserError(Exception):
    """A mistake in the user's config or data; printed as one line, exit code 2."""

    kind = "error"

    def __str__(self) -> str:  # one line, always
        return " ".join(super().__str__().split())


class ConfigError(UserError):
    kind = "config error"


class DataError(UserError):
    kind = "data error"
