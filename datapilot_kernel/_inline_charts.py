"""In a dashboard's kernel: HoloViews' ``hv.extension`` puts its scripts in the page.

By default it has the browser load BokehJS and Panel from their CDNs; a viewer's browser
may reach nothing but the hub (a closed network, or these tests). The dashboard runtime
imports this module at every kernel's start (an IPython startup file); HoloViews itself
is only imported, and then changed, when the notebook imports it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

_TARGET = "holoviews.ipython"


class _InlineWhenImported(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            # a class parameter's default: hv.extension(...) without inline= inlines
            module.notebook_extension.inline = True

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    """Inline HoloViews' scripts from its first import on (at once if already imported)."""
    module = sys.modules.get(_TARGET)
    if module is not None:
        module.notebook_extension.inline = True
    elif not any(isinstance(f, _InlineWhenImported) for f in sys.meta_path):
        sys.meta_path.insert(0, _InlineWhenImported())


install()
