"""``rcl.apply`` and ``python -m rcl apply``: a finished run's network over one's own images, tiled."""

from __future__ import annotations

import numpy as np
import png
import pytest
import torch
from PIL import Image

from rcl import apply, cli, data, evaluate, runs, train
from rcl.models import UNet

#: Tiled against untiled output, float32 on the CPU: max abs difference (measured: below 1e-6).
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished smoke-profile run (seconds)."""
    cfg = train.make_config("n2n", "smoke", runs_dir=str(tmp_path_factory.mktemp("runs")), progress=False)
    return train.pretrain(cfg).path


def _photo(path, h, w, bits=8, seed=0):
    rng = np.random.default_rng(seed)
    if bits == 16:
        arr = rng.integers(0, 65536, (h, w, 3), dtype=np.uint16)
        with open(path, "wb") as f:
            png.Writer(w, h, bitdepth=16, greyscale=False).write(f, arr.reshape(h, w * 3))
    else:
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("depth", [2, 3])
def test_exact_overlap_covers_the_measured_receptive_field(depth):
    """The gradient of one output pixel reaches no input pixel farther than the radius exact_overlap assumes."""
    torch.manual_seed(0)
    model = UNet(width=4, depth=depth)
    n, m = 2**depth * 16, 2**depth
    radius = 8 * (m - 1) + 2
    assert apply.exact_overlap(model) * 3 / 4 >= radius and apply.exact_overlap(model) % m == 0
    for offset in range(m):  # every position on the pooling grid
        x = torch.rand(1, 3, n, n, requires_grad=True)
        c = n // 2 + offset
        model(x)[0, 0, c, c].backward()
        reached = (x.grad[0].abs().sum(0) > 0).nonzero()
        assert (reached - c).abs().max() <= radius


@pytest.mark.parametrize("depth", [2, 3])
def test_tiled_output_equals_untiled(depth):
    """An image of odd sizes over several tiles (rows and columns, a short last tile): equal within TOLERANCE
    at the default overlap; with no context at all the tiles differ visibly (the test can fail)."""
    torch.manual_seed(depth)
    model = UNet(width=8, depth=depth).eval()
    image = torch.rand(3, 301, 213)
    with torch.no_grad():
        whole = model(image[None])[0]
    tiled = apply.apply_tiled(model, image, tile=64)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < TOLERANCE
    assert (apply.apply_tiled(model, image[None], tile=64)[0] - whole).abs().max() < TOLERANCE  # batched input
    assert (apply.apply_tiled(model, image, tile=64, overlap=0) - whole).abs().max() > 1e-3


@pytest.mark.parametrize("size", [(201, 5), (5, 201), (203, 6), (200, 40)])
def test_a_narrow_image_is_padded_as_the_whole_image_is(size):
    """An image narrower than the network's padding is padded by replication where a wide one is reflected; a
    tile that did not reach the padded edge could pick the other mode, so the image is padded once, whole."""
    torch.manual_seed(0)
    model = UNet(width=8, depth=3).eval()
    image = torch.rand(3, *size)
    with torch.no_grad():
        whole = model(image[None])[0]
    tiled = apply.apply_tiled(model, image, tile=64)
    assert tiled.shape == whole.shape and (tiled - whole).abs().max() < TOLERANCE


def test_tiled_output_of_a_trained_run_equals_untiled(run):
    model = runs.load_model(run)
    image = torch.rand(3, 150, 97)
    with torch.no_grad():
        whole = model(image[None])[0]
    assert (apply.apply_tiled(model, image, tile=32) - whole).abs().max() < TOLERANCE


def test_bad_parameters_are_one_line_errors():
    model = UNet(width=4, depth=2)
    for kwargs, text in [({"tile": 0}, "tile"), ({"overlap": -4}, "overlap")]:
        with pytest.raises(ValueError, match=text):
            apply.apply_tiled(model, torch.rand(3, 16, 16), **kwargs)
    with pytest.raises(ValueError, match="bits"):
        apply.write_png("x.png", torch.rand(3, 4, 4), bits=12)


@pytest.mark.parametrize("bits", [8, 16])
def test_folder_outputs_are_named_after_inputs_with_their_bit_depth(run, tmp_path, bits):
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "a.png", 40, 57)
    _photo(src / "b.jpg", 33, 70)
    _photo(src / "c.png", 50, 41, bits=16)
    (src / "notes.txt").write_text("not an image")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    outs = apply.apply_folder(run, src, tmp_path / "out", bits=bits, tile=32, progress=False)
    assert sorted(p.name for p in outs) == ["a.png", "b.png", "c.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "c.png"]  # no temporaries
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # inputs untouched
    model = runs.load_model(run)
    for out in outs:
        _, _, _, info = png.Reader(filename=str(out)).read()
        assert info["bitdepth"] == bits and info["planes"] == 3
        name = next(p for p in src.iterdir() if p.stem == out.stem)
        x = data.load_image(name)
        with torch.no_grad():
            expected = model(x[None])[0].clamp(0, 1)
        got = data.load_image(out)
        assert got.shape == x.shape
        assert (got - expected).abs().max() <= 0.5 / (2**bits - 1) + 1e-5  # the rounding to `bits` bits only


def test_one_file_and_refusals_to_overwrite_an_input(run, tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    photo = _photo(src / "a.png", 24, 24)
    original = photo.read_bytes()
    with pytest.raises(ValueError, match="output folder is the input folder"):
        apply.apply_folder(run, src, src, progress=False)
    with pytest.raises(ValueError, match=r"a\.png.*would overwrite an input"):
        apply.apply_folder(run, photo, src, progress=False)  # one file, its output beside it
    _photo(src / "a.jpg", 24, 24)
    with pytest.raises(ValueError, match=r"a\.png.*is also that of"):
        apply.apply_folder(run, src, tmp_path / "out", progress=False)
    assert photo.read_bytes() == original and not (tmp_path / "out").exists()
    assert [p.name for p in apply.apply_folder(run, photo, tmp_path / "one", progress=False)] == ["a.png"]
    (tmp_path / "two" / "a.png").mkdir(parents=True)  # a folder where an output would go: named before any work
    with pytest.raises(ValueError, match=r"two/a\.png: a folder is where the output of .*a\.png would be written"):
        apply.apply_folder(run, photo, tmp_path / "two", progress=False)


def test_an_image_without_pixels_is_named(tmp_path):
    """A 0×5 TIFF decoded to an empty array and failed later as "cannot write empty image", naming no file."""
    from rcl import imagefile

    with pytest.raises(ValueError, match=r"empty\.tif: an image of 0×5 px \(width × height\) has no pixels"):
        imagefile._to_float_rgb(np.zeros((5, 0, 3), np.uint8), "empty.tif")


def test_an_unreadable_input_stops_no_other_and_hidden_files_are_not_inputs(run, tmp_path):
    """A truncated photograph among good ones: the good ones are written, then one error names the bad one and
    the count; macOS's ``._`` metadata files are not read as images at all; an OUTPUT that is a file is refused."""
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "a.png", 20, 20)
    _photo(src / "c.png", 20, 20)
    (src / "b.png").write_bytes((src / "a.png").read_bytes()[:40])  # truncated
    (src / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 resource fork")
    assert [p.name for p in apply.input_files(src)] == ["a.png", "b.png", "c.png"]
    text = r"1 of 3 input\(s\) not read \(and no output of theirs kept\), the other 2 written: .*b\.png"
    with pytest.raises(ValueError, match=text) as err:
        apply.apply_folder(run, src, tmp_path / "out", progress=False)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]
    _photo(src / "b.png", 20, 20)  # readable now: an output for it is written ...
    apply.apply_folder(run, src, tmp_path / "out", progress=False)
    (src / "b.png").write_bytes((src / "a.png").read_bytes()[:40])  # ... and not kept once it is unreadable again
    with pytest.raises(ValueError, match="no output of theirs kept"):
        apply.apply_folder(run, src, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "b.png").exists()

    def never(*args, **kwargs):
        raise AssertionError("a network was loaded for one unreadable input")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apply, "load_network", never)
        with pytest.raises(ValueError, match=r"b\.png"):
            apply.apply_folder("runs/any", src / "b.png", tmp_path / "one", progress=False)
    hidden_only = tmp_path / "hidden"
    hidden_only.mkdir()
    (hidden_only / "._a.jpg").write_bytes(b"\x00")
    with pytest.raises(ValueError, match=r"1 hidden file\(s\) such as \._a\.jpg are not images"):
        apply.input_files(hidden_only)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="afile: a file, not a folder"):
        apply.apply_folder(run, src, tmp_path / "afile", progress=False)


def test_command_line_end_to_end(run, tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "x.png", 30, 45)
    argv = ["apply", str(run), str(src), str(tmp_path / "out"), "--bits", "16", "--tile", "16", "--overlap", "8",
            "--device", "cpu", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    assert "1 image(s) written" in capsys.readouterr().out
    assert png.Reader(filename=str(tmp_path / "out" / "x.png")).read()[3]["bitdepth"] == 16
    assert cli.main(["apply", str(run), str(src), str(src), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rcl: error: ") and "input folder" in err and "\n" not in err
    assert cli.main(["apply", str(tmp_path), str(src), str(tmp_path / "o2"), "--quiet"]) == 2  # not a run at all
    assert "not a run directory (no config.json)" in capsys.readouterr().err
    (run / "model.pt").rename(run / "model.keep")  # a run that has not finished: how to resume it
    assert cli.main(["apply", str(run), str(src), str(tmp_path / "o2"), "--quiet"]) == 2
    assert "has not finished" in capsys.readouterr().err and not (tmp_path / "o2").exists()
    (run / "model.keep").rename(run / "model.pt")
    assert cli.main(["apply", str(run), str(src), str(tmp_path / "o3"), "--device", "nonesuch", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "device='nonesuch'" in err and "valid here: cpu" in err and "\n" not in err


def _proxy(run, **fields):
    """A quick proxy protocol for ``run`` (a few labelled crops, a few Adam steps)."""
    return evaluate.proxy_config(run, task="denoise", n_labels=2, label_size=32, head_steps=5, pixels=4096,
                                 **fields)


def test_the_proxy_head_is_the_one_whose_score_the_protocol_reports(run):
    """``head="proxy"`` applies trial 0's head of the proxy protocol: on a test case, the tiled output equals
    :func:`rcl.evaluate.proxy_predict`'s (the output the protocol scores) — and differs from the run's own."""
    cfg = _proxy(run)
    network, about = apply.load_network(run, "proxy", "cpu", cfg)
    assert about["head"] == "proxy" and about["labels"] == "2 crops of 32 px from builtin" and about["trial"] == 0
    x, _, scored = evaluate.proxy_predict(run, cfg, image=0, trial=0)
    got = apply.apply_tiled(network, x, tile=16).clamp(0, 1)
    assert (got - scored).abs().max() <= TOLERANCE
    own, _ = apply.load_network(run, "own", "cpu")
    with torch.no_grad():
        assert (own(x[None])[0].clamp(0, 1) - got).abs().max() > 1e-3


def test_the_proxy_head_takes_its_labels_from_the_folder_given(run, tmp_path):
    clean = tmp_path / "clean"
    clean.mkdir()
    for i in range(2):
        _photo(clean / f"c{i}.png", 48, 48, seed=i)
    _, ours = apply.load_network(run, "proxy", "cpu", _proxy(run, dataset="folder", data_dir=str(clean)))
    _, book = apply.load_network(run, "proxy", "cpu", _proxy(run))
    assert ours["labels"] == f"2 crops of 32 px from {clean}" and ours["fit_l1"] != book["fit_l1"]


def test_proxy_head_on_the_command_line(run, tmp_path, capsys):
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "x.png", 30, 45)
    quick = ["--proxy", "n_labels=2", "--proxy", "label_size=32", "--proxy", "head_steps=5", "--proxy", "pixels=4096"]
    argv = ["apply", str(run), str(src), str(tmp_path / "out"), "--head", "proxy", *quick,
            "--labels-dataset", "builtin", "--device", "cpu", "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "proxy head fitted on 2 crops of 32 px from builtin" in out and "1 image(s) written" in out
    for extra, text in [(["--labels-dir", str(src)], "--head proxy"),  # labels without a proxy head
                        (["--profile", "smoke"], "--head proxy"),
                        (["--profile", "cpu"], "--head proxy"),  # the default, given: still the proxy's
                        (["--head", "proxy", "--proxy", "bogus=1"], "valid keys"),
                        (["--head", "proxy", "--proxy", "trials=3"], "do not change the head"),
                        (["--head", "proxy", "--labels-dir", str(tmp_path / "none")], "none"),
                        (["--head", "proxy", "--labels-dataset", "bsds500", "--labels-dir", str(tmp_path / "none")],
                         "datasets download bsds500")]:
        assert cli.main(["apply", str(run), str(src), str(tmp_path / "o2"), *extra, "--quiet"]) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("rcl: error: ") and text in err and "\n" not in err, err


def test_a_run_whose_training_folder_moved_asks_for_labels(run, tmp_path, capsys, monkeypatch):
    """The proxy head's clean crops come from the run's training folder by default: moved away, the error
    names the folder and the option that gives another, before anything is loaded."""
    import json
    import shutil

    monkeypatch.delenv("RCL_DEBUG", raising=False)
    moved = shutil.copytree(run, tmp_path / "run")
    config = json.loads((moved / "config.json").read_text())
    (moved / "config.json").write_text(json.dumps({**config, "dataset": "folder", "data_dir": str(tmp_path / "gone")}))
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "x.png", 30, 45)
    assert cli.main(["apply", str(moved), str(src), str(tmp_path / "out"), "--head", "proxy", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rcl: error: {tmp_path / 'gone'}: ") and "give --labels-dir DIR" in err, err
    assert not (tmp_path / "out").exists()


def test_the_proxy_head_follows_the_profile_and_refuses_what_is_not_the_protocol(run):
    """By default the head is fitted as notebook 04 fits it at the profile given; a trial the protocol does not
    run, or another task, is refused by name."""
    from rcl import config

    smoke = config.settings("proxy", "smoke")
    _, about = apply.load_network(run, "proxy", "cpu", profile="smoke")
    assert about["labels"] == f"{smoke['n_labels']} crops of {smoke['label_size']} px from builtin"
    assert about["steps"] == smoke["head_steps"]
    with pytest.raises(ValueError, match="trial=5"):
        apply.load_network(run, "proxy", "cpu", _proxy(run), trial=5)
    with pytest.raises(ValueError, match="task='sr'"):
        apply.load_network(run, "proxy", "cpu", _proxy(run).__class__(**{**vars(_proxy(run)), "task": "sr"}))


def test_bad_folders_are_refused_before_any_network_is_loaded(run, tmp_path, capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a network was loaded before the folders were checked")

    monkeypatch.setattr(apply, "load_network", never)
    src = tmp_path / "photos"
    src.mkdir()
    _photo(src / "x.png", 20, 20)
    for source, output in [(tmp_path / "missing", tmp_path / "out"), (src, src)]:
        assert cli.main(["apply", str(run), str(source), str(output), "--head", "proxy", "--quiet"]) == 2
        assert capsys.readouterr().err.startswith("rcl: error: ")


def test_the_command_lines_heads_are_the_librarys():
    action = next(a for a in cli.build_parser()._subparsers._group_actions[0].choices["apply"]._actions
                  if a.dest == "head")
    assert tuple(action.choices) == apply.HEADS
