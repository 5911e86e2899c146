"""`spikeforge generate --network net.toml --cores C` maps a network and writes the array."""

from __future__ import annotations

import json

import pytest

from spikeforge.cli import main
from spikeforge.codesign.mapping import MappingError, map_network
from spikeforge.loader import load_config
from spikeforge.sw.config import ConfigError, SnnConfig

NET_TOML = """\
[network]
layers = [16, 24, 16, 6]
timesteps = 4

[array]
lanes = 4
"""


def _write(tmp_path, text: str, name: str = "net.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _fails(argv: list[str], capsys) -> str:
    """Run ``main(argv)``, expect exit status 2 and return standard error."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_load_config_returns_the_network_and_the_array_table(tmp_path):
    config = load_config(_write(tmp_path, NET_TOML))
    assert config.net == SnnConfig(layers=(16, 24, 16, 6), timesteps=4)
    assert config.is_array and dict(config.array) == {"lanes": 4} and not config.core
    top = _write(tmp_path, 'layers = [8, 4]\ndevice = "x"\n', "top.toml")
    with pytest.raises(ConfigError, match="unknown config key"):
        load_config(top)  # device belongs in [array] or [core]
    top.write_text('layers = [8, 4]\n[array]\ncores = 1\ndevice = "25k"\n')
    config = load_config(top)
    assert (config.net, dict(config.array)) == (
        SnnConfig(layers=(8, 4)),
        {"cores": 1, "device": "25k"},
    )
    assert config.mapping().cores == 1
    bare = load_config(_write(tmp_path, "layers = [8, 4]\n", "bare.toml"))
    assert not bare.is_array and not bare.core


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("layers = [8, 4]\narray = 3\n", "must be an [array] table, not 3"),
        (
            "layers = [8, 4]\n[array]\ncore = 2\n",
            "unknown [array] key(s) core in config file",
        ),
        ('layers = [8, 4]\n[array]\ncores = "2"\n', "[array] cores in config file"),
        ("layers = [8, 4]\n[array]\nlanes = true\n", "must be an int, not True"),
        ("layers = [8, 4]\n[array]\ndevice = 25\n", "must be a string, not 25"),
        (
            "[network]\nlayers = [8, 4]\n[core]\nlanes = 2\n[array]\ncores = 1\n",
            "has a [core] table",
        ),
    ],
)
def test_load_config_rejects_bad_array_tables(tmp_path, text, message):
    with pytest.raises(MappingError) as info:
        load_config(_write(tmp_path, text))
    assert message in str(info.value)
    if "unknown" in message:
        assert "allowed keys: cores, lanes, device, lr_range" in str(info.value)


def test_load_config_reports_missing_files_and_bad_toml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(_write(tmp_path, "layers = [8, 4\n"))


def test_cli_generates_the_array_the_mapping_places(tmp_path, capsys):
    toml = _write(tmp_path, NET_TOML)
    out = tmp_path / "array"
    assert main(["generate", "--network", str(toml), "--cores", "5", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    mapping = map_network(SnnConfig(layers=(16, 24, 16, 6), timesteps=4), 5, lanes=4)
    assert summary["cores"] == 5
    assert summary["cores_per_layer"] == list(mapping.cores_per_layer) == [2, 2, 1]
    assert summary["layers"] == [[0, 1], [2, 3], [4]]
    for key in ("verilog", "manifest", "mapping"):
        assert (out / summary[key].rsplit("/", 1)[-1]).is_file()
    assert summary["out"] == str(out)
    man = json.loads((out / "manifest.json").read_text())
    assert man["layers"] == summary["layers"]
    assert man["array_hash"] == summary["array_hash"]
    assert [c["core_hash"] for c in man["cores"]] == [p.core_hash for p in mapping.core_params()]
    assert "module spikeforge_array(" in (out / "spikeforge_array.v").read_text()
    recorded = json.loads((out / "mapping.json").read_text())
    stream = recorded.pop("train_step_stream")
    assert recorded == json.loads(json.dumps(mapping.to_dict()))
    assert [(row["command"], row["cores"]) for row in stream] == [
        ("SET_LABEL", [4, 4]),
        ("FORWARD", [2, 4]),
        ("LOAD_SPIKES", [0, 1]),
        ("BACKWARD", [0, 4]),
    ]
    assert stream[1]["route_word"] == "0xf0002003"  # cores 2 .. 4
    assert stream[2]["command_word"] == "0x03000001"  # LOAD_FORWARD
    assert [row["wait_for_answers"] for row in stream] == [False, False, True, True]


def test_cli_takes_cores_from_the_array_table_and_prints_the_mapping(tmp_path, capsys):
    toml = _write(tmp_path, "layers = [8, 8, 4]\ntimesteps = 2\n[array]\ncores = 3\nlanes = 2\n")
    out = tmp_path / "array"
    assert main(["generate", "--network", str(toml), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    title = "network (8, 8, 4), T = 2: 3 cores on one ECP5 85k, about 5 of its 208 block RAMs"
    assert title in text
    assert f"wrote {out / 'spikeforge_array.v'} and {out / 'manifest.json'} (array " in text
    assert "3 cores, layers [0, 1] [2])" in text
    man = json.loads((out / "manifest.json").read_text())
    assert [c["params"]["lanes"] for c in man["cores"]] == [2, 2, 2]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cores", "2"], "has 3 weight layers: needs at least 3 cores, got 2"),
        (["--cores", "99"], "can use at most"),
        ([], "--cores is required with --network"),
        (["--cores", "3", "--lanes", "0"], "lanes = 0 is out of range"),
        (["--cores", "3", "--device", "12k"], "device = '12k' is not known"),
        (["--cores", "3", "--layer", "1"], "--layer does not apply to an array"),
        (["--cores", "3", "--emit-error"], "--emit-error does not apply to an array"),
        (["--cores", "3", "--no-emit-error"], "--no-emit-error does not apply to an array"),
    ],
)
def test_cli_array_errors_name_the_problem(tmp_path, capsys, extra, message):
    toml = _write(tmp_path, NET_TOML)
    out = tmp_path / "x"
    err = _fails(["generate", "--network", str(toml), "-o", str(out), *extra], capsys)
    assert message in err
    assert err.startswith("spikeforge generate: error: ")
    assert not out.exists()  # nothing is elaborated or written


def test_cli_array_rejects_bad_array_keys_and_flag_mixes(tmp_path, capsys):
    toml = _write(tmp_path, NET_TOML + "lane = 2\n")
    err = _fails(["generate", "--network", str(toml), "--cores", "3", "-o", str(tmp_path)], capsys)
    assert "unknown [array] key(s) lane" in err
    toml = _write(tmp_path, NET_TOML)
    argv = ["generate", "--network", str(toml), "--config", str(toml), "-o", str(tmp_path)]
    err = _fails([*argv, "--cores", "3"], capsys)
    assert "--network and --config are mutually exclusive" in err
    err = _fails(["generate", "--cores", "3", "-o", str(tmp_path / "y")], capsys)
    assert "--cores needs --network" in err
    assert not (tmp_path / "y").exists()


def test_network_flags_override_the_file(tmp_path, capsys):
    toml = _write(tmp_path, NET_TOML)
    err = _fails(
        ["generate", "--network", str(toml), "--cores", "3", "--layers", "8,8", "-o", "x"], capsys
    )
    # --layers 8,8 has one weight layer: three cores are more than its two lane groups of 4
    assert "can use at most 2 cores" in err


@pytest.mark.rtl
def test_cli_array_is_lint_clean(tmp_path, capsys):
    toml = _write(tmp_path, "layers = [8, 12, 4]\ntimesteps = 2\n[array]\nlanes = 4\n")
    out = tmp_path / "array"
    argv = ["generate", "--network", str(toml), "--cores", "3", "-o", str(out), "--lint", "--json"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["lint_warnings"] == []
    assert summary["cores_per_layer"] == [2, 1]
