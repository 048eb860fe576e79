"""mkdocs hook: docs/flags.md's `<!-- flags -->` becomes the trainer's flags, written from TrainConfig.

Each flag is a field of keras_motivation.config.TrainConfig with its help in the field's metadata (the same
text `--helpfull` prints); the groups are the class's one-line section comments ("# Data."). Nothing about a
flag is written twice: a new field is in the reference at the next build.
"""

import dataclasses
import importlib.util
import inspect
import os
import re
import sys

MARKER = "<!-- flags -->"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# "    # Data." in the class body: a group's title.
SECTION = re.compile(r"^    # ([A-Z][A-Za-z ]*)\.$")
FIELD = re.compile(r"^    ([a-z_][a-z0-9_]*): ")


def _sections(cls):
    """{field name: its group's title} from the section comments of the class body."""
    title, out = "Flags", {}
    for line in inspect.getsource(cls).splitlines():
        match = SECTION.match(line)
        if match:
            title = match.group(1)
        match = FIELD.match(line)
        if match:
            out[match.group(1)] = title
    return out


def _default(field):
    if field.default is not dataclasses.MISSING:
        value = field.default
    else:
        value = field.default_factory()
    if value is None or value == () or value == {}:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"`{value}`"


def _cell(text):
    text = " ".join(text.split()).replace("|", "\\|")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _import_config():
    """keras_motivation.config.TrainConfig, imported without TensorFlow's start-up lines on stderr (the package
    imports TensorFlow; keras_motivation.console names those lines)."""
    if "tensorflow" in sys.modules:
        from keras_motivation.config import TrainConfig

        return TrainConfig
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The console module by its path: importing it from the package would import TensorFlow first.
    spec = importlib.util.spec_from_file_location("_console", os.path.join(ROOT, "keras_motivation", "console.py"))
    console = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(console)
    with console.start_up_lines_dropped():
        from keras_motivation.config import TrainConfig
    return TrainConfig


def flags_markdown():
    """The reference: one table per group, a row per flag (name, default, help)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    TrainConfig = _import_config()

    sections = _sections(TrainConfig)
    groups = {}
    for field in dataclasses.fields(TrainConfig):
        groups.setdefault(sections.get(field.name, "Flags"), []).append(field)
    out = []
    for title, fields in groups.items():
        out += [f"## {title}", "", "| flag | default | what it does |", "|---|---|---|"]
        for field in fields:
            out.append(f"| `--{field.name}` | {_default(field)} | {_cell(field.metadata['help'])} |")
        out.append("")
    return "\n".join(out)


def on_page_markdown(markdown, page, **kwargs):
    if MARKER in markdown:
        return markdown.replace(MARKER, flags_markdown())
    return markdown
