"""The one exception type for problems the user can fix."""


class MnistCnnError(Exception):
    """A problem with the user's input: a file, an option, a model.

    The message names the input and the problem in one line. The CLI prints it
    as ``error: <message>`` and exits with code 2, without a traceback.
    """


class NotAnImageError(MnistCnnError):
    """The bytes are no image format Pillow knows (the web API answers 415)."""


class ImageTooLargeError(MnistCnnError):
    """The image has more pixels than allowed; refused before decoding (413)."""


class PortInUseError(MnistCnnError):
    """The web server's port is taken by another program (the CLI exits with code 3)."""


def one_line(text: str) -> str:
    """``text`` with its control characters escaped, so a message stays one line.

    A file name may hold a newline; printed raw it would split the error line
    that scripts read.
    """
    return "".join(
        character if character.isprintable() or character == " " else repr(character)[1:-1]
        for character in text
    )


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, at most ``limit`` characters, for a one-line report.

    Libraries (Keras, ONNX Runtime, h5py) raise messages of many lines, sometimes
    with whole stack dumps; the user needs the first. An empty message gives the
    exception's type name, so the report never ends in "()".
    """
    text = str(error).strip()
    if not text:
        return type(error).__name__
    line = text.splitlines()[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"
