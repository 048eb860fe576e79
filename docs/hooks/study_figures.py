"""mkdocs hook: the first study's committed report figures (tools/examples/pay_study/report/*.png) are part of
the site as examples/pay_study/report/*.png, where tools/report.py wrote them, without a copy under docs/."""

import glob
import os

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIGURES = os.path.join("tools", "examples", "pay_study", "report")


def on_files(files, config, **kwargs):
    for path in sorted(glob.glob(os.path.join(ROOT, FIGURES, "*.png"))):
        name = os.path.basename(path)
        files.append(File.generated(config, f"examples/pay_study/report/{name}", abs_src_path=path))
    return files
