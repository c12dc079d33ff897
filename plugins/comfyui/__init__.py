"""vidrestore for ComfyUI: temporally stable CodeFormer face restoration of frame batches.

A clone of the repository in ComfyUI's ``custom_nodes/`` loads this package through the root
``__init__.py`` (see the README). Linked on its own it works too where vidrestore is installed
in ComfyUI's Python. ComfyUI reads ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS``.
"""

from .host import register_model_folder
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

register_model_folder()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
