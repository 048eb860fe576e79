"""The documentation site: the flags reference is written from the config, a dead link fails the build, the API
reference shows each public name's signature, every code block fits and runs (or says it is an excerpt), and the
built site opens in a real browser with its images and without anything cut off."""

import dataclasses
import functools
import glob
import html
import http.server
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest
from testing_utils import ROOT

DOCS = os.path.join(ROOT, "docs")


def _hook(name):
    """docs/hooks/<name>.py as a module (by its path: the site hook's name is also the standard library's)."""
    spec = importlib.util.spec_from_file_location(f"hook_{name}", os.path.join(DOCS, "hooks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _flags_hook():
    return _hook("flags_reference")


def test_the_site_links_its_repository_and_says_the_packages_version(monkeypatch):
    """docs/hooks/site.py: the header's repository link from $KERAS_MOTIVATION_REPO_URL (else the clone's origin
    remote, as a web address), and the footer's version from keras_motivation/version.py."""
    from keras_motivation import version

    site = _hook("site")
    monkeypatch.setenv("KERAS_MOTIVATION_REPO_URL", "git@example.org:owner/keras-motivation.git")
    config = site.on_config({"repo_url": None})
    assert config["repo_url"] == "https://example.org/owner/keras-motivation"
    assert config["copyright"] == f"keras-motivation {version.__version__}"
    # A repo_url written in mkdocs.yml wins.
    assert site.on_config({"repo_url": "https://example.org/x"})["repo_url"] == "https://example.org/x"


def test_the_flags_reference_is_written_from_every_config_field():
    from keras_motivation.config import TrainConfig

    hook = _flags_hook()
    with open(os.path.join(DOCS, "flags.md"), encoding="utf-8") as f:
        page = f.read()
    assert hook.MARKER in page and "| `--" not in page, "the page holds the marker, not the flags written out"
    text = hook.on_page_markdown(page, page=None)
    for field in dataclasses.fields(TrainConfig):
        row = next((line for line in text.splitlines() if line.startswith(f"| `--{field.name}` |")), None)
        assert row, field.name
        assert row.endswith(f" | {hook._cell(field.metadata['help'])} |"), field.name
    # The class's section comments group the flags.
    assert {"## What to train", "## Data", "## Recipe", "## Running"} <= set(text.splitlines())


def test_a_dead_link_fails_the_strict_build(tmp_path):
    """The site as committed, with one link to a page that does not exist: `mkdocs build --strict` (what
    ./test.sh runs) fails and names it. About 10 s on 2 cores (the API pages and the flags hook included)."""
    pytest.importorskip("mkdocs")
    for name in (
        "mkdocs.yml",
        "CHANGELOG.md",
        "docs",
        "keras_motivation",
        os.path.join("tools", "examples", "pay_study", "report"),
    ):
        source = os.path.join(ROOT, name)
        if os.path.isdir(source):
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, tmp_path / name)
    with open(tmp_path / "docs" / "index.md", "a", encoding="utf-8") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert run.returncode != 0, run.stderr[-2000:]
    assert "no-such-page.md" in run.stderr, run.stderr[-2000:]


# -- the API reference ----------------------------------------------------------------------------

# The names the issue asks the reference for, under the names users import.
REQUIRED_NAMES = (
    "keras_motivation.MotivatedModel",
    "keras_motivation.JointStep",
    "keras_motivation.Policy",
    "keras_motivation.policy.DEFAULT",
    "keras_motivation.policy.get",
    "keras_motivation.WeightsMap",
    "keras_motivation.conditions.Growth",
    "keras_motivation.conditions.ConsecutiveDecrease",
    "keras_motivation.conditions.Always",
    "keras_motivation.conditions.Never",
    "keras_motivation.weights_map.derive",
    "keras_motivation.models.get_pair",
    "keras_motivation.models.get_ladder",
    "keras_motivation.data.make_pipeline",
    "keras_motivation.config.TrainConfig",
)
# Internals that the reference no longer lists beside the public API (the design page says how the engine works).
INTERNALS = ("switch_to_base", "slot_entries", "Trace", "Tail", "_mode_update", "tf.switch_case")


def _reference_names():
    """{public name: its reference page} from the pages' `::: name` lines."""
    names = {}
    for path in sorted(glob.glob(os.path.join(DOCS, "reference", "*.md"))):
        with open(path, encoding="utf-8") as f:
            for name in re.findall(r"^::: (\S+)", f.read(), re.M):
                names[name] = os.path.relpath(path, DOCS)
    return names


def test_every_public_argument_has_a_type():
    """griffe's view of each name the reference renders: every parameter is annotated or typed in `Args:` (the
    strict build fails on a documented one without; this covers the undocumented ones too)."""
    griffe = pytest.importorskip("griffe")
    package = griffe.load("keras_motivation", search_paths=[ROOT], docstring_parser="google", resolve_aliases=True)
    names = _reference_names()
    assert set(REQUIRED_NAMES) <= set(names), set(REQUIRED_NAMES) - set(names)
    untyped = []
    for name in names:
        obj = package[name.split(".", 1)[1]]
        obj = obj.final_target if obj.is_alias else obj
        if obj.is_class:
            init = obj.members.get("__init__")
            parameters = init.parameters if init is not None else []
        elif obj.is_function:
            parameters = obj.parameters
        else:
            continue
        typed = set()
        for section in obj.docstring.parse("google", warnings=False) if obj.docstring else []:
            if section.kind.value == "parameters":
                typed |= {p.name for p in section.value if p.annotation}
        for p in parameters:
            if p.name in ("self", "cls") or p.kind.value in ("variadic positional", "variadic keyword"):
                continue
            if p.annotation is None and p.name not in typed:
                untyped.append(f"{name}({p.name})")
    assert not untyped, untyped


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    """The site as `./test.sh` builds it (strict, griffe's warnings on): its build when it passes one
    ($KERAS_MOTIVATION_SITE), else built here (about 30 s on 2 cores)."""
    pytest.importorskip("mkdocs")
    given = os.environ.get("KERAS_MOTIVATION_SITE")
    if given:
        return os.path.abspath(given)
    out = tmp_path_factory.mktemp("site")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return str(out)


def _text(markup):
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


@pytest.mark.xdist_group("site")
def test_the_reference_shows_each_public_names_signature(built_site):
    """Each public name has its heading under the name users import and its signature apart (the callable's name,
    then its arguments; a constant's name, then its value) right below it, before any other heading; an exception
    class has no arguments to show."""
    missing = []
    for name, page in _reference_names().items():
        with open(os.path.join(built_site, page[: -len(".md")], "index.html"), encoding="utf-8") as f:
            text = f.read()
        heading = text.find(f'id="{name}"')
        if heading < 0:
            missing.append(f"{name}: no heading")
            continue
        short = name.rsplit(".", 1)[1]
        # An exception class has no arguments to show; TrainConfig's are its fields, the flags, which the flags
        # reference lists with their defaults and help (its signature would show the help texts' source).
        if short.endswith("Error") or short == "TrainConfig":
            continue
        end = text.find("doc-heading", text.find("</h", heading))  # the next object's heading
        own = text[heading : end if end > 0 else len(text)]
        signature = re.search(r'class="[^"]*doc-signature[^"]*"[^>]*>(.*?)</code>', own, re.S)
        # A constant (policy.DEFAULT) shows its value: "DEFAULT = Policy(...)".
        symbol = re.search(r"doc-symbol-(?!heading)(\w+)", own)
        opens = f"{short} = " if symbol and symbol.group(1) == "attribute" else f"{short}("
        if not signature or not _text(signature.group(1)).strip().startswith(opens):
            missing.append(f"{name}: no signature")
    assert not missing, missing
    for page in set(_reference_names().values()):
        with open(os.path.join(built_site, page[: -len(".md")], "index.html"), encoding="utf-8") as f:
            shown = [word for word in INTERNALS if word in _text(f.read())]
        assert not shown, f"{page} shows internals {shown}"


@pytest.mark.xdist_group("site")
def test_the_reference_shows_the_policy_object_ladders_and_the_joint_steps_weights(built_site):
    """What the engine gained lately is on its reference pages, typed: the policy object MotivatedModel takes, every
    rung's predictions and weights, and the joint step's per-model weights, equilibrium and teachers."""

    def page(name):
        with open(os.path.join(built_site, "reference", name, "index.html"), encoding="utf-8") as f:
            return " ".join(_text(f.read()).split())

    engine, policy = page("engine"), page("policy")
    for shown in (
        "policy (Policy | None, default: None )",
        "predict_every_rung(x,",
        "get_weights()",
        "set_weights(weights)",
        "weights (Sequence[float] | None, default: None )",
        "equilibrium (bool, default: False )",
        "distillation_teachers (str, default: 'largest' )",
    ):
        assert shown in engine, shown
    assert 'DEFAULT = Policy( condition="growth:epochs=0.45",' in policy
    assert "PAPER = dataclasses.replace(" in policy


# -- code blocks ----------------------------------------------------------------------------------

# Python blocks a test runs as written; any other says in its first line that it is an excerpt.
RUN_BY_TESTS = {
    "index.md": "tests/test_readme.py",
    "guides/python.md": "tests/test_readme.py",
    "guides/keras-hub.md": "tests/test_keras_hub.py (slow)",
}
CODE_COLUMNS = 88


def _code_blocks():
    """(page, language, code) of every fenced block of the site's pages."""
    for path in sorted(glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            for language, code in re.findall(r"^```(\w*)\n(.*?)^```", f.read(), re.S | re.M):
                yield os.path.relpath(path, DOCS), language, code


def test_code_fits_88_columns_and_every_python_block_runs_or_is_an_excerpt():
    """Program output (```text, which the site wraps) aside, no line of code is wider than 88 columns."""
    wide, unmarked = [], []
    for page, language, code in _code_blocks():
        if language != "text":
            wide += [f"{page}: {line[:40]}..." for line in code.splitlines() if len(line) > CODE_COLUMNS]
        if language == "python" and page not in RUN_BY_TESTS and not code.startswith("# An excerpt"):
            unmarked.append(page)
    assert not wide, wide
    assert not unmarked, f"python blocks neither run by a test nor marked '# An excerpt': {unmarked}"


# -- the site in a browser --------------------------------------------------------------------------

CHROMIUM = next(
    (shutil.which(name) for name in ("chromium-headless-shell", "chromium", "chromium-browser") if shutil.which(name)),
    None,
)
requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs Chromium: apt-get install chromium-headless-shell (./test.sh installs it when run as root)",
)
# Set on the page once it has loaded: its images that did not load, and its tables and code blocks whose content
# is wider than their box (a reader would have to scroll sideways). Material's script wraps each table in a
# scrolling box (.md-typeset__scrollwrap) and lets the table grow: that box is the one a wide table overflows.
CHECK = """<script>
window.addEventListener("load", function () {
  var broken = Array.from(document.images).filter(function (i) { return !i.complete || i.naturalWidth === 0; });
  var boxes = document.querySelectorAll(
    ".md-content .md-typeset__scrollwrap, .md-content table, .md-content pre > code");
  var cut = Array.from(boxes).filter(function (e) { return e.scrollWidth > e.clientWidth + 1; });
  document.documentElement.setAttribute("data-check", JSON.stringify({
    broken: broken.map(function (i) { return i.getAttribute("src"); }),
    cut: cut.map(function (e) {
      return e.tagName + " " + e.scrollWidth + " > " + e.clientWidth + " px: " + e.textContent.trim().slice(0, 60);
    }),
    h1: (document.querySelector(".md-content h1") || {textContent: ""}).textContent.replace("\u00b6", "").trim()
  }));
});
</script>"""
# The pages a newcomer opens first; the slow test loads every page.
FIRST_PAGES = ("", "guides/python/", "reference/engine/", "studies/", "performance/")


class _Site(http.server.SimpleHTTPRequestHandler):
    """The built site, each HTML page with CHECK before its </body>."""

    def send_head(self):
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            path = os.path.join(path, "index.html")
        if not path.endswith(".html") or not os.path.exists(path):
            return super().send_head()
        with open(path, encoding="utf-8") as f:
            body = self.page(f.read()).replace("</body>", CHECK + "</body>").encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def page(self, text):
        return text

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_site(built_site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Site, directory=built_site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def _open(url):
    """What headless Chromium finds on the page at `url`, 1280 pixels wide: its title and CHECK's findings."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", run.stdout, re.S)
    check = re.search(r'<html[^>]*data-check="([^"]*)"', run.stdout)
    assert check, f"{url}: the page did not finish loading"
    return html.unescape(title.group(1)).strip() if title else "", json.loads(html.unescape(check.group(1)))


def _check_pages(base, pages):
    problems = []
    for page in pages:
        title, found = _open(base + page)
        # Its title in the window (the navigation's name, then the site's) and its heading on the page.
        if not found["h1"] or not title or (page and not title.endswith(" - keras-motivation")):
            problems.append(f"/{page}: title {title!r}, heading {found['h1']!r}")
        problems += [f"/{page}: broken image {src}" for src in found["broken"]]
        problems += [f"/{page}: cut off at 1280 px: {what}" for what in found["cut"]]
    assert not problems, problems


class _WiderSite(_Site):
    """The built site with a table of 12 wide columns, a 200-character code line and an image that does not exist
    under the glossary's title."""

    WIDE = (
        '<img src="no-such-figure.png" alt="missing">'
        "<table><tr>"
        + "".join(f"<td>column_{i}_without_a_break</td>" for i in range(12))
        + "</tr></table><pre><code>x = "
        + "a" * 200
        + "</code></pre>"
    )

    def page(self, text):
        return text.replace("</h1>", "</h1>" + self.WIDE, 1) if self.path.startswith("/glossary") else text


@requires_chromium
@pytest.mark.xdist_group("site")
def test_the_browser_check_finds_a_cut_off_table_a_cut_off_code_line_and_a_broken_image(built_site):
    """What the checks below would miss if Material's scrolling box around tables went unmeasured (about 3 s)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_WiderSite, directory=built_site))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, found = _open(f"http://127.0.0.1:{server.server_address[1]}/glossary/")
    finally:
        server.shutdown()
    assert any(cut.startswith("DIV ") and "column_0" in cut for cut in found["cut"]), found
    assert any(cut.startswith("CODE ") for cut in found["cut"]), found
    assert found["broken"] == ["no-such-figure.png"], found


@requires_chromium
@pytest.mark.xdist_group("site")
def test_the_first_pages_open_in_chromium_with_their_titles_and_images_and_nothing_cut_off(served_site):
    """The home page, a guide, the MotivatedModel reference, the results and the performance page (about 2 s a
    page)."""
    _check_pages(served_site, FIRST_PAGES)


# Slow (every page of the site, about a minute): by default the first pages above.
@pytest.mark.slow
@requires_chromium
@pytest.mark.xdist_group("site")
def test_every_page_opens_in_chromium_with_its_title_and_images_and_nothing_cut_off(built_site, served_site):
    pages = sorted(
        os.path.relpath(os.path.dirname(p), built_site).replace(".", "") + "/"
        for p in glob.glob(os.path.join(built_site, "**", "index.html"), recursive=True)
        if "/assets/" not in p and "/search/" not in p
    )
    _check_pages(served_site, [p.lstrip("/") for p in pages])
