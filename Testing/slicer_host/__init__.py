"""A headless Slicer host for tests: real MRML from slicer-core plus small stand-ins.

``start_host()`` once per process, then ``slicer.mrmlScene``, ``slicer.util`` helpers,
``slicer.modules.<name>.logic()`` and each module's ``<Module>.py`` work headless;
``load_scripted_module(path)`` imports a module file and instantiates its module class.
"""

from .bootstrap import MODULE_LOGICS, Host, current_host, install_stand_ins, start_host
from .modules import LoadedModule, load_scripted_module, module_files, self_check_names

__all__ = ["MODULE_LOGICS", "Host", "LoadedModule", "current_host", "install_stand_ins",
           "load_scripted_module", "module_files", "self_check_names", "start_host"]
