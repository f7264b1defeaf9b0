"""Stand-in for termcolor.colored (imported by SimMIM's logger.py): returns the text unchanged."""


def colored(text, *args, **kwargs):
    return text
