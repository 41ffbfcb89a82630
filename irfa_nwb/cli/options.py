"""Command-line options generated from the library's signatures and numpydoc docstrings.

The ``fit`` command exposes every parameter of :class:`irfa_nwb.IRFA` and ``fit`` / ``predict``
every option of :func:`irfa_nwb.load_dataset` (and of :func:`irfa_nwb.open_nwb` for streamed
files). Names, defaults and types come from the signatures and ``get_params()``, help texts
from the "Parameters" sections of the docstrings, so the command line cannot drift from the
library: a new estimator parameter appears as an option by itself, and one whose type has no
command-line form makes :func:`estimator_options` fail (the tests build the parser) until it is
given a form or listed in :data:`NOT_ON_COMMAND_LINE` with the reason.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ESTIMATOR_ALIASES",
    "ESTIMATOR_CLI_DEFAULTS",
    "LOADER_DEST_PREFIX",
    "LOADER_NOT_ON_COMMAND_LINE",
    "NOT_ON_COMMAND_LINE",
    "Option",
    "ParamDoc",
    "add_options",
    "estimator_options",
    "loader_options",
    "parse_parameters",
]

#: estimator parameters without a command-line option, and why (shown in ``fit --help``)
NOT_ON_COMMAND_LINE: dict[str, str] = {
    "unit_groups": "the heads are the electrode groups of the file",
    "callbacks": "Python callables",
    "epochs": "deprecated name of max_iter (--max-iter / --epochs)",
    "verbose": "a progress bar is shown unless --quiet",
    "num_workers": "deprecated and ignored (the training data are indexed in memory)",
}

#: friendly extra names of estimator options
ESTIMATOR_ALIASES: dict[str, tuple[str, ...]] = {
    "max_iter": ("--epochs",),
    "random_state": ("--seed",),
}

#: where the command line's default differs from the estimator's, and why
ESTIMATOR_CLI_DEFAULTS: dict[str, tuple[Any, str]] = {
    "random_state": (0, "seeded with 0 so that a run can be repeated ('none': a fresh seed "
                        "each run); also seeds the train / test split"),
}

#: loader parameters without a command-line option, and why
LOADER_NOT_ON_COMMAND_LINE: dict[str, str] = {
    "source": "the SOURCE argument",
}

_NONE_WORDS = ("none",)

#: the argparse ``dest`` of a loader option is this plus the parameter name, so that it cannot
#: collide with an estimator parameter of the same name (``image_size``)
LOADER_DEST_PREFIX = "load_"


# --------------------------------------------------------------------------- numpydoc


@dataclass(frozen=True)
class ParamDoc:
    """One entry of a numpydoc "Parameters" section.

    Attributes
    ----------
    name : str
        Parameter name.
    type_spec : str
        The text after ``name :`` (``"int, default 64"``, ``'{"a", "b"} or None'``).
    description : str
        The indented description, joined into one paragraph.
    """

    name: str
    type_spec: str
    description: str

    @property
    def choices(self) -> tuple[Any, ...] | None:
        """The values of a ``{...}`` set in the type, plus None when it says ``or None``."""
        found = re.search(r"\{([^}]*)\}", self.type_spec)
        if found is None:
            return None
        values: list[Any] = []
        for item in found.group(1).split(","):
            item = item.strip()
            if not item:
                continue
            try:
                values.append(ast.literal_eval(item))
            except (ValueError, SyntaxError):
                values.append(item)
        rest = self.type_spec[found.end():]
        if re.search(r"\bor None\b", rest) and None not in values:
            values.append(None)
        return tuple(values)


def parse_parameters(doc: str | None) -> dict[str, ParamDoc]:
    """Read the "Parameters" section of a numpydoc docstring.

    Parameters
    ----------
    doc : str or None
        The docstring.

    Returns
    -------
    dict of str to ParamDoc
        One entry per documented name; ``a, b : float`` gives an entry for each of ``a`` and
        ``b`` with the same text.
    """
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, ParamDoc] = {}
    start = None
    for i in range(len(lines) - 1):
        if lines[i].strip() == "Parameters" and set(lines[i + 1].strip()) == {"-"}:
            start = i + 2
            break
    if start is None:
        return out
    entries: list[tuple[str, list[str]]] = []
    for i in range(start, len(lines)):
        line = lines[i]
        is_header = (
            i + 1 < len(lines) and line.strip() and not line.startswith(" ")
            and set(lines[i + 1].strip()) == {"-"}
        )
        if is_header:
            break
        if line.strip() and not line.startswith(" "):
            entries.append((line.strip(), []))
        elif entries:
            entries[-1][1].append(line.strip())
    for head, body in entries:
        names, _, type_spec = head.partition(" : ")
        text = " ".join(part for part in body if part)
        for name in names.split(","):
            name = name.strip().lstrip("*")
            if name:
                out[name] = ParamDoc(name, type_spec.strip(), text)
    return out


def help_text(text: str) -> str:
    """A docstring description as plain argparse help (RST markup removed, ``%`` escaped)."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = text.replace("``", "")
    return " ".join(text.split()).replace("%", "%%")


# --------------------------------------------------------------------------- value types


def _none_or(convert: Callable[[str], Any], what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.strip().lower() in _NONE_WORDS:
            return None
        return convert(text)

    parse.__name__ = what  # argparse names the type in its "invalid ... value" message
    return parse


def _choice(choices: Sequence[Any]) -> Callable[[str], Any]:
    words = {_word(c): c for c in choices}

    def parse(text: str) -> Any:
        key = text.strip()
        if key in words:
            return words[key]
        if key.lower() in words:
            return words[key.lower()]
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from {', '.join(words)})"
        )

    return parse


def _word(value: Any) -> str:
    """How a value is typed on the command line."""
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def show_default(value: Any) -> str:
    """A default value as it would be typed on the command line."""
    if isinstance(value, tuple | list):
        return " ".join(_word(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    return _word(value)


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def area_window(text: str) -> tuple[str, tuple[float, float]]:
    """``AREA=START,STOP`` (seconds) -> ``(AREA, (START, STOP))``."""
    area, sep, pair = text.partition("=")
    parts = pair.split(",")
    try:
        if not (sep and area.strip() and len(parts) == 2):
            raise ValueError
        start, stop = float(parts[0]), float(parts[1])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected AREA=START,STOP in seconds (e.g. V1=0,0.133), got {text!r}"
        ) from None
    if not stop > start:
        raise argparse.ArgumentTypeError(f"{text!r}: STOP must be larger than START")
    return area.strip(), (start, stop)


_QUALITY_OPS = ("==", "!=", "<=", "<", ">=", ">")


def quality(text: str) -> str | dict[str, Any]:
    """``allen`` or a JSON object of unit filters (``{"column": ["<=", 0.1], ...}``)."""
    if text.strip().lower() == "allen":
        return "allen"
    try:
        rules = json.loads(text)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(
            f"expected 'allen' or a JSON object such as "
            f"'{{\"quality\": \"good\", \"amplitude_cutoff\": [\"<=\", 0.1]}}', got {text!r}"
        ) from None
    if not isinstance(rules, dict) or not rules:
        raise argparse.ArgumentTypeError(f"the JSON must be a non-empty object, got {text!r}")
    out: dict[str, Any] = {}
    for column, rule in rules.items():
        if isinstance(rule, list):
            if len(rule) != 2 or rule[0] not in _QUALITY_OPS:
                raise argparse.ArgumentTypeError(
                    f"filter of {column!r} must be a value or [OP, value] with OP one of "
                    f"{' '.join(_QUALITY_OPS)}; got {rule!r}"
                )
            rule = (rule[0], rule[1])
        out[column] = rule
    return out


def json_object(text: str) -> dict[str, Any]:
    """A JSON object (keyword arguments)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"invalid JSON ({err.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


class _TupleAction(argparse.Action):
    """Store ``nargs`` values as a tuple."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, tuple(values))


class _WindowAction(argparse.Action):
    """Store ``START STOP`` as a tuple, refusing STOP <= START."""

    def __call__(self, parser, namespace, values, option_string=None):
        start, stop = values
        if not stop > start:
            raise argparse.ArgumentError(self, f"STOP must be larger than START, got {values}")
        setattr(namespace, self.dest, (start, stop))


class _WindowsAction(argparse.Action):
    """Collect ``AREA=START,STOP`` items into a dict, refusing an area given twice."""

    def __call__(self, parser, namespace, values, option_string=None):
        out: dict[str, tuple[float, float]] = {}
        for area, window in values:
            if area in out:
                raise argparse.ArgumentError(self, f"area {area!r} given twice")
            out[area] = window
        setattr(namespace, self.dest, out)


class _PathsAction(argparse.Action):
    """One path as is; a repeated option collects its paths into a list."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        if current is None:
            setattr(namespace, self.dest, values)
        else:
            setattr(namespace, self.dest,
                    [*([current] if isinstance(current, str) else current), values])


# --------------------------------------------------------------------------- options


@dataclass
class Option:
    """One command-line option: the parameter it sets and ``add_argument``'s arguments.

    Attributes
    ----------
    name : str
        The library parameter (the argparse ``dest``, with :data:`LOADER_DEST_PREFIX` for
        loader options).
    flags : tuple of str
        Option strings, the first one ``--name-with-dashes``.
    kwargs : dict
        Keyword arguments of ``add_argument`` (``help`` without the default: the help
        formatter adds it).
    show_default : bool
        Whether ``--help`` shows the default (False where the help text says it).
    """

    name: str
    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    show_default: bool = True


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _kinds(hint: Any) -> set[Any]:
    """The alternatives of a type hint: ``int | None`` -> ``{int, NoneType}``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        out: set[Any] = set()
        for arg in typing.get_args(hint):
            out |= _kinds(arg)
        return out
    return {hint}


def _tuple_item(kinds: set[Any]) -> Any:
    """The item type of a ``tuple[int, ...]`` among ``kinds``, else None."""
    for kind in kinds:
        if typing.get_origin(kind) is tuple:
            args = [a for a in typing.get_args(kind) if a is not Ellipsis]
            if len(set(args)) == 1 and args[0] in (int, float, str):
                return args[0]
    return None


def estimator_options(
    cls: type,
    *,
    exclude: Mapping[str, str] | None = None,
    aliases: Mapping[str, Sequence[str]] | None = None,
    defaults: Mapping[str, tuple[Any, str]] | None = None,
) -> list[Option]:
    """One option per parameter of a scikit-learn style estimator class.

    Parameters
    ----------
    cls : type
        The estimator class; ``cls()`` must work and ``cls().get_params()`` lists the
        parameters. Types come from the ``__init__`` annotations, help texts and choices
        (``{"a", "b"}``) from the numpydoc "Parameters" section of the class docstring.
    exclude : mapping of str to str, optional
        Parameters left out, with the reason (default :data:`NOT_ON_COMMAND_LINE`).
    aliases : mapping of str to sequence of str, optional
        Extra option strings per parameter (default :data:`ESTIMATOR_ALIASES`).
    defaults : mapping of str to (value, reason), optional
        Command-line defaults that differ from the estimator's (default
        :data:`ESTIMATOR_CLI_DEFAULTS`).

    Returns
    -------
    list of Option
        In the order of the ``__init__`` signature.

    Raises
    ------
    TypeError
        A parameter has a type with no command-line form and is not excluded.
    """
    exclude = NOT_ON_COMMAND_LINE if exclude is None else exclude
    aliases = ESTIMATOR_ALIASES if aliases is None else aliases
    defaults = ESTIMATOR_CLI_DEFAULTS if defaults is None else defaults
    params = cls().get_params(deep=False)
    hints = typing.get_type_hints(cls.__init__)
    docs = parse_parameters(cls.__doc__)
    order = [n for n in inspect.signature(cls).parameters if n in params]
    options = []
    for name in order + sorted(set(params) - set(order)):
        if name in exclude:
            continue
        default, reason = defaults.get(name, (params[name], ""))
        doc = docs.get(name)
        text = help_text(doc.description) if doc and doc.description else ""
        text = text or name.replace("_", " ").capitalize() + "."
        if reason:
            text = f"{text} On the command line: {help_text(reason)}."
        hint = hints.get(name, type(params[name]))
        kwargs = _value_kwargs(name, hint, doc)
        kwargs.update(dest=name, default=default, help=text)
        options.append(Option(name, (_flag(name), *aliases.get(name, ())), kwargs))
    return options


def _value_kwargs(name: str, hint: Any, doc: ParamDoc | None) -> dict[str, Any]:
    """``add_argument`` keywords that parse the values of one parameter."""
    kinds = _kinds(hint)
    nullable = type(None) in kinds
    kinds.discard(type(None))
    choices = doc.choices if doc is not None else None
    if choices:
        if nullable and None not in choices:
            choices = (*choices, None)
        return dict(type=_choice(choices), metavar="{" + ",".join(map(_word, choices)) + "}")
    if kinds == {bool}:
        return dict(action=argparse.BooleanOptionalAction)
    item = _tuple_item(kinds)
    if item is not None:
        return dict(nargs="+", type=item, action=_TupleAction,
                    metavar=name.rsplit("_", 1)[-1].upper().rstrip("S"))
    if kinds in ({int}, {float}, {int, float}):
        number = float if float in kinds else int
        word = number.__name__.upper()
        if nullable:
            return dict(type=_none_or(number, number.__name__), metavar=f"{word}|none")
        return dict(type=number, metavar=word)
    if kinds == {str}:
        return dict(type=str, metavar="TEXT" if not name.endswith("path") else "PATH")
    raise TypeError(
        f"estimator parameter {name!r} has type {hint} with no command-line form: give it one "
        "in irfa_nwb/cli/options.py or list it in NOT_ON_COMMAND_LINE with the reason"
    )


def loader_options(*, for_predict: bool = False) -> list[Option]:
    """The options of :func:`irfa_nwb.load_dataset` and :func:`irfa_nwb.open_nwb`.

    Parameters
    ----------
    for_predict : bool
        ``predict`` takes the response window, time bins and latency from the model unless
        they are given: their default is then None ("as the model was fitted").

    Returns
    -------
    list of Option
        Help texts from the two functions' docstrings, defaults from their signatures.
    """
    from ..data.loader import load_dataset
    from ..data.sources import open_nwb

    docs = {**parse_parameters(open_nwb.__doc__), **parse_parameters(load_dataset.__doc__)}
    signature = {
        **inspect.signature(open_nwb).parameters,
        **inspect.signature(load_dataset).parameters,
    }
    specs: list[tuple[str, tuple[str, ...], dict[str, Any], str]] = [
        ("presentations", (), dict(metavar="NAME"), ""),
        ("image_column", (), dict(metavar="COLUMN"), ""),
        ("responses", (), dict(metavar="units|auto|SERIES"), ""),
        ("window", (), dict(nargs=2, type=float, metavar=("START", "STOP"),
                            action=_WindowAction), ""),
        ("windows", (), dict(nargs="+", type=area_window, metavar="AREA=START,STOP",
                             action=_WindowsAction),
         "Written AREA=START,STOP (seconds), e.g. --windows V1=0,0.133 V4=0.033,0.166."),
        ("bins", (), dict(type=positive_int, metavar="N"), ""),
        ("rate", (), dict(action=argparse.BooleanOptionalAction), ""),
        ("latency", (), dict(type=float, metavar="SECONDS"), ""),
        ("images", (), dict(metavar="PATH", action=_PathsAction),
         "On the command line: a folder of image files, or an image file (repeat the option "
         "for several)."),
        ("image_size", ("--resize-images",),
         dict(nargs=2, type=positive_int, metavar=("HEIGHT", "WIDTH"), action=_TupleAction),
         "(--resize-images: --image-size is the model's)"),
        ("units", (), dict(nargs="+", type=int, metavar="ID", action=_TupleAction), ""),
        ("quality", (), dict(type=quality, metavar="allen|JSON"),
         "On the command line: 'allen' or a JSON object, e.g. "
         "'{\"quality\": \"good\", \"amplitude_cutoff\": [\"<=\", 0.1]}'."),
        ("keep_blank", (), dict(action=argparse.BooleanOptionalAction), ""),
        ("envelope", (), dict(action=argparse.BooleanOptionalAction), ""),
        ("envelope_kwargs", (), dict(type=json_object, metavar="JSON"),
         "A JSON object, e.g. '{\"freq_min\": 300}'."),
        ("repeats", (), dict(choices=("keep", "average")), ""),
        ("backend", (), dict(choices=("remfile", "fsspec")), ""),
        ("cache_dir", (), dict(metavar="FOLDER"), ""),
        ("retries", (), dict(type=non_negative_int, metavar="N"), ""),
        ("retry_delay", (), dict(type=non_negative_float, metavar="SECONDS"), ""),
        ("timeout", (), dict(type=non_negative_float, metavar="SECONDS"), ""),
        ("api_url", (), dict(metavar="URL"), ""),
    ]
    from_model = ("window", "bins", "latency")
    options = []
    for name, flags, kwargs, note in specs:
        default = signature[name].default
        doc = docs.get(name)
        text = help_text(doc.description) if doc is not None else ""
        if note:
            text = f"{text} {help_text(note)}".strip()
        shown = True
        if for_predict and name in from_model:
            default, shown = None, False
            text += " (default: as the model was fitted)"
        options.append(Option(name, flags or (_flag(name),),
                              {**kwargs, "dest": LOADER_DEST_PREFIX + name, "default": default,
                               "help": text}, shown))
    return options


def open_options() -> list[Option]:
    """The streaming options of :func:`irfa_nwb.open_nwb` (for ``inspect``)."""
    names = ("backend", "cache_dir", "retries", "retry_delay", "timeout", "api_url")
    return [o for o in loader_options() if o.name in names]


def add_options(group: Any, options: Sequence[Option]) -> None:
    """Add options to an argparse parser or argument group."""
    for option in options:
        kwargs = dict(option.kwargs)
        text = kwargs.pop("help", "")
        action = group.add_argument(*option.flags, **kwargs)
        action.help = text  # BooleanOptionalAction may append its own default; ours is shown
        action.show_default = option.show_default  # type: ignore[attr-defined]
