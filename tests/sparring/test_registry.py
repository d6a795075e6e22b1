"""Registries: register by name, clear errors with suggestions for unknown names."""

from __future__ import annotations

import pytest

from sparring.errors import UserInputError
from sparring.registry import Registry


def test_register_and_get():
    reg: Registry = Registry("widget")

    @reg.register("alpha")
    class Alpha: ...

    assert reg.get("alpha") is Alpha and "alpha" in reg and reg.names() == ["alpha"]
    with pytest.raises(ValueError, match="twice"):
        reg.register("alpha")(object)
    with pytest.raises(UserInputError, match="did you mean 'alpha'") as exc:
        reg.get("alpah", where="cfg.widget")
    assert "cfg.widget" in str(exc.value)


def test_missing_builtin_module_is_tolerated_but_broken_one_is_not():
    reg: Registry = Registry("thing", ("sparring.no_such_module_here",))
    assert reg.names() == []
    broken: Registry = Registry("thing", ("sparring.tests_broken_import_probe",))
    import sys
    import types

    mod = types.ModuleType("sparring.tests_broken_import_probe")
    sys.modules.pop("sparring.tests_broken_import_probe", None)
    # a module whose own import fails on a missing dependency must surface the error
    import importlib.abc
    import importlib.machinery

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "sparring.tests_broken_import_probe":
                return importlib.machinery.ModuleSpec(name, Loader())
            return None

    class Loader(importlib.abc.Loader):
        def create_module(self, spec):
            return mod

        def exec_module(self, module):
            import not_a_real_dependency_xyz  # noqa: F401

    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        with pytest.raises(ModuleNotFoundError, match="not_a_real_dependency_xyz"):
            broken.names()
    finally:
        sys.meta_path.remove(finder)
