"""``import espnet_prune`` is cheap and registers names lazily into s3prl/ESPnet."""

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_is_cheap_and_lazy():
    out = _run(
        """
        import sys, time
        t = time.perf_counter()
        import espnet_prune
        print(time.perf_counter() - t)
        print(any(m == "espnet2" or m.startswith(("espnet2.", "s3prl")) for m in sys.modules))
        """
    )
    seconds, heavy = out.split()
    assert heavy == "False"
    assert float(seconds) < 2.0


def test_hook_runs_registration_on_later_import(monkeypatch, tmp_path):
    # A stand-in target module proves the mechanism without importing heavy packages.
    (tmp_path / "fake_target.py").write_text("VALUE = 1\n")
    (tmp_path / "fake_plugin.py").write_text(
        "def register(module):\n    module.REGISTERED = module.VALUE + 1\n"
    )
    out = _run(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from espnet_prune import registration
        registration.REGISTRATIONS["fake_target"] = ["fake_plugin:register"]
        registration.install()
        import fake_target
        print(fake_target.REGISTERED)
        """
    )
    assert out.strip() == "2"


def test_registration_when_target_already_imported(tmp_path):
    (tmp_path / "fake_target2.py").write_text("VALUE = 5\n")
    (tmp_path / "fake_plugin2.py").write_text(
        "def register(module):\n    module.REGISTERED = module.VALUE * 2\n"
    )
    out = _run(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import fake_target2
        from espnet_prune import registration
        registration.REGISTRATIONS["fake_target2"] = ["fake_plugin2:register"]
        registration.install()
        print(fake_target2.REGISTERED)
        """
    )
    assert out.strip() == "10"


def test_s3prl_hub_gets_plugin_upstream():
    out = _run(
        """
        import espnet_prune
        from s3prl import hub
        from s3prl.nn import S3PRLUpstream
        print(callable(getattr(hub, "wavlm_prunable_local", None)))
        print("wavlm_prunable_local" in S3PRLUpstream.available_names())
        """
    )
    # s3prl prints notes about optional upstreams it cannot import; our two lines come last
    assert out.split()[-2:] == ["True", "True"]
