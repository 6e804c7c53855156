"""`lakehouse run` and `lakehouse logs`: to come."""


def register(command) -> None:
    pass
