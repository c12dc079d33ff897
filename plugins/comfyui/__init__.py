"""vidrestore for ComfyUI: temporally stable CodeFormer face restoration of frame batches.

Put (or link) this folder into ComfyUI's ``custom_nodes/`` and install vidrestore into ComfyUI's
Python (``pip install vidrestore``). ComfyUI reads ``NODE_CLASS_MAPPINGS`` and
``NODE_DISPLAY_NAME_MAPPINGS`` from here.
"""

from .host import register_model_folder
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

register_model_folder()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
