"""The Python API (``import spikeforge as sf``): one config loader, train, generate; the CLI's
user errors as one line, anything else with its traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import spikeforge as sf
from spikeforge import cli
from spikeforge.codesign.mapping import MappingError
from spikeforge.hw.devices import DEVICE_NAMES, ECP5_DEVICES
from spikeforge.hw.params import CoreParams
from spikeforge.loader import OVERRIDE_KEYS
from spikeforge.sw.checkpoint import save_checkpoint
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.nir_io import NirError


def test_load_config_applies_overrides_by_name_to_the_network_and_the_core(tmp_path):
    toml = tmp_path / "core.toml"
    toml.write_text("layers = [16, 8, 4]\ntimesteps = 4\n[core]\nlanes = 2\n")
    config = sf.load_config(toml, w_bits=6, lanes=4, device="25k")
    assert config.net == SnnConfig(layers=(16, 8, 4), timesteps=4, w_bits=6)
    assert dict(config.core) == {"lanes": 4, "device": "25k"} and not config.is_array
    assert config.core_params() == CoreParams(net=config.net, lanes=4, device="25k")
    assert sf.load_config().net == SnnConfig()  # no file: the default network


def test_load_config_refuses_unknown_names_listing_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        sf.load_config(w_bit=6)
    message = str(info.value)
    assert "unknown config key(s) w_bit" in message
    assert all(key in message for key in ("w_bits", "lanes", "cores", "rate_encoder"))
    assert len(OVERRIDE_KEYS) == len(set(OVERRIDE_KEYS))


def test_load_config_validates_the_hardware_it_is_given():
    with pytest.raises(ConfigError, match="lanes = 3 does not divide"):
        sf.load_config(layers=[16, 8], lanes=3)
    sf.load_config(layers=[16, 30, 4])  # trains, though 8 lanes do not divide 30 neurons
    array = sf.load_config(layers=[16, 24, 16, 6], timesteps=4, cores=4, lanes=4)
    assert array.is_array and array.mapping().cores == 4 and len(array.design()) == 4
    with pytest.raises(MappingError, match="layer configures one core, not an array"):
        sf.load_config(layers=[16, 24, 16, 6], cores=4, layer=1)
    with pytest.raises(ConfigError, match="device = '12k' is not known: allowed 25k, 45k, 85k"):
        sf.load_config(layers=[16, 8], device="12k")


def test_load_config_array_says_what_the_hardware_is(tmp_path):
    toml = tmp_path / "net.toml"
    toml.write_text("layers = [16, 24, 16, 6]\n[array]\nlanes = 4\n")
    config = sf.load_config(toml)
    assert config.is_array and dict(config.array) == {"lanes": 4}
    with pytest.raises(ConfigError, match="an array needs cores"):
        config.mapping()
    with pytest.raises(MappingError, match="has an \\[array\\] table, which configures an array"):
        sf.load_config(toml, array=False)
    bare = sf.load_config(layers=[16, 24, 16, 6], array=True, lanes=4, device="25k")
    assert dict(bare.array) == {"lanes": 4, "device": "25k"} and not bare.core
    with pytest.raises(MappingError, match="cores configures an array"):
        sf.load_config(cores=2, array=False)


def test_device_names_are_listed_once():
    assert DEVICE_NAMES == tuple(ECP5_DEVICES) == ("25k", "45k", "85k")


def test_train_and_generate_check_their_arguments(tmp_path):
    config = sf.load_config(layers=[64, 8, 10], timesteps=2)
    with pytest.raises(ConfigError, match="epochs = 0 is out of range"):
        sf.train(config, epochs=0, out=tmp_path)
    with pytest.raises(ConfigError, match="mode = 'fixed' is not allowed"):
        sf.train(config, mode="fixed", out=tmp_path)
    with pytest.raises(ConfigError, match="init starts integer training"):
        sf.train(config, mode="float", init=tmp_path / "w.pt", out=tmp_path)
    with pytest.raises(TypeError, match="config must be a Config"):
        sf.train({"layers": [64, 10]})
    with pytest.raises(TypeError, match="config must be a Config"):
        sf.generate("net.toml", out=tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    """The README's ``sf.load_config`` block, run as written beside the ``net.toml`` it
    names: a 64-16-10 network trained for one epoch, its first layer generated."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (code,) = [b for b in blocks if "sf.load_config" in b and "sf.generate" in b]
    monkeypatch.chdir(tmp_path)
    Path("net.toml").write_text("layers = [64, 16, 10]\n\n[core]\nlanes = 4\n")
    exec(compile(code, "README.md", "exec"), {})
    accuracy, built = capsys.readouterr().out.splitlines()
    assert accuracy.split()[0].endswith("%") and accuracy.split()[1] == "runs/api/checkpoint.pt"
    assert built == "build/api/spikeforge_core.v True"
    result = json.loads(Path("runs/api/result.json").read_text())
    assert result["dataset"] == "digits" and result["config"]["timesteps"] == 2
    manifest = json.loads(Path("build/api/manifest.json").read_text())
    assert manifest["params"]["lanes"] == 4


def test_cli_prints_user_errors_as_one_line_and_lets_bugs_through(monkeypatch, capsys):
    def user(args):
        raise ConfigError("w_bits = 40 is out of range")

    monkeypatch.setattr(cli, "cmd_generate", user)
    with pytest.raises(SystemExit) as info:
        cli.main(["generate", "-o", "x"])
    assert info.value.code == 2
    assert capsys.readouterr().err == "spikeforge generate: error: w_bits = 40 is out of range\n"

    def bug(args):
        raise ValueError("an internal bug")

    monkeypatch.setattr(cli, "cmd_generate", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        cli.main(["generate", "-o", "x"])


def test_cli_export_to_an_unwritable_path_is_one_line(tmp_path, capsys):
    cfg = SnnConfig(layers=(4, 2), timesteps=2)
    meta = {"epoch": 0, "history": [], "train_seconds": 0.0}
    ckpt = save_checkpoint(tmp_path / "net.pt", cfg, "int", GoldenModel(cfg).state_dict(), meta)
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the NIR file's folder would be
    with pytest.raises(SystemExit) as info:
        cli.main(["export", str(ckpt), "--nir", str(blocker / "out.nir")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("spikeforge export: error: cannot write the NIR file ")
    assert err.count("\n") == 1
    with pytest.raises(NirError, match="cannot write the NIR file"):
        sf.export_nir(ckpt, tmp_path)  # a folder
