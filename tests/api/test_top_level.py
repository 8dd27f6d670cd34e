"""The top-level API the way a notebook uses it: names stay what they are, in any order, twice."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import bayesdecide as bd

LAZY_CALLABLES = ["fit", "fit_summary", "prior_predictive", "load_card", "run_card"]


def test_no_submodule_shadows_an_exported_name():
    import pkgutil

    names = set(bd.__all__)
    for info in pkgutil.walk_packages(bd.__path__, prefix="bayesdecide."):
        parent, _, leaf = info.name.rpartition(".")
        if parent == "bayesdecide":
            assert leaf not in names, f"submodule bayesdecide.{leaf} shadows bd.{leaf}"


def test_every_exported_name_resolves_and_is_listed_by_dir():
    listed = dir(bd)
    for name in bd.__all__:
        assert name in listed, name
        assert not isinstance(getattr(bd, name), types.ModuleType), name


def test_fit_stays_a_function_after_touching_every_other_name():
    # a fresh interpreter: the order of first use is what used to replace bd.fit by a module
    code = (
        "import types, bayesdecide as bd\n"
        "for name in bd.__all__:\n"
        "    getattr(bd, name)\n"
        "for name in ['fit', 'fit_summary', 'Fit', 'Decision', 'load_card', 'run_card']:\n"
        "    assert not isinstance(getattr(bd, name), types.ModuleType), name\n"
        "assert callable(bd.fit) and callable(bd.fit)\n"
        "import bayesdecide.model.fitting, bayesdecide.run, bayesdecide.card\n"
        "assert callable(bd.fit) and callable(bd.run_card) and callable(bd.load_card)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_lazy_names_survive_a_reload_of_their_modules():
    for name in LAZY_CALLABLES:
        first = getattr(bd, name)
        module = importlib.import_module(first.__module__)
        assert getattr(module, name) is first
        assert callable(getattr(bd, name))
