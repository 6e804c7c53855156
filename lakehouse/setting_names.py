"""The names of the lakehouse's settings that lower floors mention in their messages, and the
error type of a bad setting: here, below both the settings and the table stores, so that a store
can say which variable to fix without importing the settings (its configuration arrives as values)."""


class SettingsError(ValueError):
    """An environment variable holds a value the lakehouse cannot use."""


def bucket_variable(layer: str) -> str:
    """The variable naming a layer's bucket (``artifacts`` included), for settings and error messages."""
    return f"LAKEHOUSE_{layer.upper()}_BUCKET"


def database_variable(layer: str) -> str:
    return f"LAKEHOUSE_GLUE_DATABASE_{layer.upper()}"


# The key of keyed pseudonyms (contracts/sensitive.py): read where a write needs it, never configured.
PSEUDONYM_KEY_VARIABLE = "LAKEHOUSE_PSEUDONYM_KEY"
