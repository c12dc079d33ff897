"""ComfyUI entry point: this checkout, cloned into ``ComfyUI/custom_nodes/``, is a node pack.

ComfyUI imports this file by path. It makes the checkout's own ``vidrestore/`` the ``vidrestore``
library (unless one is imported already), so pack and library match, without putting the
checkout on ``sys.path``; then it re-exports the node pack in ``plugins/comfyui``. The library's
wheel does not contain this file.
"""

import importlib.util
import os
import sys

_LIB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vidrestore")


def _load_library() -> None:
    spec = importlib.util.spec_from_file_location(
        "vidrestore", os.path.join(_LIB, "__init__.py"), submodule_search_locations=[_LIB])
    module = importlib.util.module_from_spec(spec)
    sys.modules["vidrestore"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop("vidrestore", None)
        raise


if __name__ == "vidrestore":
    # Imported by name with the folder above the checkout on sys.path (a checkout named
    # vidrestore): whoever imports it gets the library in this module's place.
    _load_library()
elif __package__:  # a lone top-level import of this file has nothing to register
    if "vidrestore" not in sys.modules:
        _load_library()

    from .plugins.comfyui import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

    __all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
