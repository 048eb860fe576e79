"""mkdocs hook: the site's footer says the package's version (keras_motivation/version.py, read as text), and the
header links the repository (`repo_url`) when mkdocs.yml does not: from $KERAS_MOTIVATION_REPO_URL, else the
checkout's `origin` remote (a clone has one; a checkout without a remote gets no link rather than a made-up one)."""

import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def version():
    with open(os.path.join(ROOT, "keras_motivation", "version.py")) as f:
        return re.search(r'__version__ = "([^"]+)"', f.read()).group(1)


def origin_url():
    """The `origin` remote as a web address (git@host:owner/name.git -> https://host/owner/name), or None."""
    url = os.environ.get("KERAS_MOTIVATION_REPO_URL")
    if not url:
        try:
            run = subprocess.run(
                ["git", "remote", "get-url", "origin"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=10,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        url = run.stdout.strip() if run.returncode == 0 else ""
    if not url:
        return None
    ssh = re.fullmatch(r"[\w.-]+@([\w.-]+):(.+)", url)
    if ssh:
        url = f"https://{ssh.group(1)}/{ssh.group(2)}"
    return url.removesuffix(".git") if url.startswith("https://") else None


def on_config(config, **kwargs):
    config["copyright"] = f"keras-motivation {version()}"
    if not config.get("repo_url"):
        config["repo_url"] = origin_url()
    return config
