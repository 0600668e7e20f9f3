"""Hostile inputs to ``python -m thinc_trf_layers compare``: each is refused with exit code 2
and one ``error:`` line that says what was found and what was expected, and ``--out`` is
left as it was; the results are written whole or not at all; Ctrl-C exits 130.

All of these fail before a model loads, so no torch is needed (they run on the Thinc 9.1
venv too): a folder with a ``config.json`` stands in for ``--model``.
"""
import codecs
import contextlib
import errno
import io
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from thinc_trf_layers import cli
from thinc_trf_layers.compare import InputError, load_data
from thinc_trf_layers.compare.inputs import RESULT_FILES, can_create_in
from thinc_trf_layers.compare.runner import write_results

ROWS = [
    {"text": "The striker scored twice.", "label": "sports"},
    {"text": "Simmer the sauce for ten minutes.", "label": "cooking"},
    {"text": "The keeper saved a penalty.", "label": "sports"},
    {"text": "Knead the dough until smooth.", "label": "cooking"},
]
NEW = {name: b"new " + name.encode() for name in RESULT_FILES}


def write_jsonl(path: pathlib.Path, rows: List[Dict[str, Any]]) -> pathlib.Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


def stand_in_model(folder: pathlib.Path) -> pathlib.Path:
    model = folder / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf8")
    return model


@pytest.fixture
def setup(tmp_path: pathlib.Path) -> Dict[str, pathlib.Path]:
    return {"data": write_jsonl(tmp_path / "d.jsonl", ROWS), "model": stand_in_model(tmp_path)}


def main_args(setup: Dict[str, pathlib.Path], out: pathlib.Path, data: Any = None) -> List[str]:
    return ["compare", "--data", str(data or setup["data"]), "--model", str(setup["model"]),
            "--out", str(out), "--quiet"]


def run_main(setup: Dict[str, pathlib.Path], out: pathlib.Path, capsys: Any,
             data: Any = None) -> str:
    """``cli.main`` with the stand-in model; asserts exit 2 and one error line, returns it."""
    code = cli.main(main_args(setup, out, data))
    err = capsys.readouterr().err
    assert code == cli.EXIT_BAD_INPUT, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def in_child(fn: Callable[[], str], *, as_nobody: bool = False) -> str:
    """What ``fn()`` returns in a forked child, which may limit itself without touching
    this process. ``as_nobody``: as root, the child becomes 'nobody', to whom file modes
    apply (root may write into a 0555 folder). The checkout, its venv and Python itself
    may lie in folders that 'nobody' cannot read (a clone in a ``mktemp -d`` folder, a
    Python under ``/root``), so what the child needs is loaded here first (the package
    is imported already; the codecs ``load_data`` looks up are loaded now). Skips, with
    the reason, if the child cannot become 'nobody', or if an import fails in it while
    one of those folders is closed to 'nobody'."""
    closed = closed_to_nobody() if as_nobody and os.geteuid() == 0 else []
    if as_nobody:
        for encoding in ("utf-8", "utf-8-sig", "ascii"):
            codecs.lookup(encoding)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child never returns into pytest
        status = 1  # what an error that escapes below gives
        try:
            os.close(read)
            try:
                if as_nobody and os.geteuid() == 0:
                    os.setgroups([])
                    os.setgid(65534)
                    os.setuid(65534)
            except OSError as err:
                result, status = f"as root, this process cannot become 'nobody': {err}", 3
            else:
                try:
                    result, status = fn(), 0
                except (ImportError, LookupError) as err:
                    result, status = traceback.format_exc(), 1
                    if closed:
                        result, status = (f"as 'nobody', the child could not load what it needs ({err!r}): "
                                          f"{', '.join(closed)} cannot be read by 'nobody'"), 3
                except BaseException:
                    result, status = traceback.format_exc(), 1
            with os.fdopen(write, "wb") as pipe:
                pipe.write(result.encode("utf8", "backslashreplace"))
        finally:
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        result = pipe.read().decode("utf8")
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if status == 3:
        pytest.skip(result)
    assert status == 0, result
    return result


def closed_to_nobody() -> List[str]:
    """The folders Python imports from (this checkout, the venv, Python's own library)
    that a user who is neither their owner nor in their group cannot read."""
    closed = []
    for folder in sorted({str(pathlib.Path(__file__).resolve().parent.parent), sys.prefix, sys.base_prefix}):
        path = pathlib.Path(folder).resolve()
        if any(not p.stat().st_mode & 0o001 for p in [path, *path.parents]) or not path.stat().st_mode & 0o004:
            closed.append(str(path))
    return closed


def main_in_child(args: List[str], as_nobody: bool = False) -> str:
    """``cli.main(args)`` in a child (``in_child``): its exit code and stderr, as text."""

    def main() -> str:
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(args)
        return f"{code}\n{err.getvalue()}"

    return in_child(main, as_nobody=as_nobody)


@pytest.fixture
def shared_dir() -> Iterator[pathlib.Path]:
    """A folder 'nobody' can reach (pytest's tmp_path is private to root)."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="trf-compare-"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        for sub in path.rglob("*"):
            if sub.is_dir() and not sub.is_symlink():
                os.chmod(sub, 0o755)
        shutil.rmtree(path)


# --------------------------------------------------------------------------- --out


def test_out_dangling_symlink_is_refused_up_front(tmp_path: pathlib.Path, setup: Any,
                                                  capsys: Any) -> None:
    out = tmp_path / "results"
    out.symlink_to(tmp_path / "gone")
    err = run_main(setup, out, capsys)
    target = str(tmp_path / "gone")
    assert f"--out {out}: is a symbolic link to {target!r}, which does not exist" in err
    assert "expected a folder, or a path where a folder can be created" in err
    assert out.is_symlink() and not (tmp_path / "gone").exists()


def test_out_below_a_dangling_symlink_is_refused(tmp_path: pathlib.Path, setup: Any,
                                                 capsys: Any) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "gone")
    err = run_main(setup, link / "sub" / "out", capsys)
    assert f"{link} is a symbolic link to {str(tmp_path / 'gone')!r}, which does not exist" in err
    assert not (tmp_path / "gone").exists()


def test_out_whose_parent_is_a_file_is_refused(tmp_path: pathlib.Path, setup: Any,
                                               capsys: Any) -> None:
    parent = tmp_path / "notes.txt"
    parent.write_text("mine", encoding="utf8")
    err = run_main(setup, parent / "deeper" / "out", capsys)
    assert f"{parent} is a file, not a folder; expected a folder to create" in err
    assert parent.read_text(encoding="utf8") == "mine"


def test_out_in_a_read_only_folder_is_refused_up_front(shared_dir: pathlib.Path) -> None:
    setup = {"data": write_jsonl(shared_dir / "d.jsonl", ROWS),
             "model": stand_in_model(shared_dir)}
    read_only = shared_dir / "ro"
    read_only.mkdir()
    os.chmod(read_only, 0o555)
    out = read_only / "results"
    assert main_in_child(main_args(setup, out), as_nobody=True) == (
        f"2\nerror: --out {out}: cannot create it, {read_only} is not writable (permission "
        f"denied or a read-only file system); expected a path where this user can create a "
        f"folder.\n"
    )
    assert list(read_only.iterdir()) == []


def test_existing_out_that_is_not_writable_is_refused(shared_dir: pathlib.Path) -> None:
    setup = {"data": write_jsonl(shared_dir / "d.jsonl", ROWS),
             "model": stand_in_model(shared_dir)}
    out = shared_dir / "out"
    out.mkdir()
    (out / "results.json").write_text("old", encoding="utf8")
    os.chmod(out, 0o555)
    assert main_in_child(main_args(setup, out), as_nobody=True) == (
        f"2\nerror: --out {out}: cannot write into this folder (permission denied or a "
        f"read-only file system); expected a folder this user can write into.\n"
    )
    assert [p.name for p in out.iterdir()] == ["results.json"]
    assert (out / "results.json").read_text(encoding="utf8") == "old"


def test_an_existing_out_in_a_read_only_folder_takes_the_results(shared_dir: pathlib.Path) -> None:
    """The temporary files are made inside an existing --out: its parent's mode does not
    matter."""
    read_only = shared_dir / "ro"
    out = read_only / "out"
    out.mkdir(parents=True)
    (out / "results.json").write_text("old", encoding="utf8")
    os.chmod(out / "results.json", 0o666)
    os.chmod(out, 0o777)
    os.chmod(read_only, 0o555)
    in_child(lambda: str(write_results(out, NEW)), as_nobody=True)
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)
    assert all((out / name).read_bytes() == NEW[name] for name in RESULT_FILES)
    assert [p.name for p in read_only.iterdir()] == ["out"]


def test_can_create_in(tmp_path: pathlib.Path) -> None:
    """The kernel's answer for the effective user: a 0555 folder refuses everyone but root."""
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o555)
    try:
        assert can_create_in(folder) is (os.geteuid() == 0)
        assert can_create_in(tmp_path)
    finally:
        os.chmod(folder, 0o755)


@pytest.mark.parametrize("name", RESULT_FILES)
def test_a_result_file_that_is_a_folder_is_refused_up_front(tmp_path: pathlib.Path, setup: Any,
                                                            capsys: Any, name: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for other in RESULT_FILES:
        if other != name:
            (out / other).write_text("old", encoding="utf8")
    (out / name).mkdir()
    err = run_main(setup, out, capsys)
    assert f"--out {out}: {out / name} is a folder; expected {name} to be a file" in err
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)
    assert all((out / o).read_text(encoding="utf8") == "old" for o in RESULT_FILES if o != name)


def test_write_results_replaces_nothing_when_a_name_became_a_folder(
    tmp_path: pathlib.Path,
) -> None:
    """A results.png folder that appeared while the run worked (after the up-front check)."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("results.json", "results.txt"):
        (out / name).write_text("old", encoding="utf8")
    (out / "results.png").mkdir()
    with pytest.raises(IsADirectoryError) as info:
        write_results(out, NEW)
    assert info.value.filename == str(out / "results.png")
    assert sorted(p.name for p in out.iterdir()) == sorted(RESULT_FILES)  # no temporary left
    assert [(out / n).read_text(encoding="utf8") for n in ("results.json", "results.txt")] == [
        "old", "old"]


def test_write_results_that_fail_leave_out_as_it_was(tmp_path: pathlib.Path) -> None:
    """The file system refuses results.png halfway (a size limit the kernel enforces on
    the child, as a full disk would): nothing is replaced, no temporary file stays, and a
    new --out is removed again with the parents made for it."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text("old", encoding="utf8")
    big = dict(NEW, **{"results.png": b"x" * 4096})

    def write_with_a_size_limit(where: pathlib.Path) -> str:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
        hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, hard))
        try:
            write_results(where, big)
        except OSError as err:
            return errno.errorcode[err.errno]
        return "written"

    assert in_child(lambda: write_with_a_size_limit(out)) == "EFBIG"
    assert [p.name for p in out.iterdir()] == ["results.json"]
    assert (out / "results.json").read_text(encoding="utf8") == "old"
    assert in_child(lambda: write_with_a_size_limit(tmp_path / "new" / "out")) == "EFBIG"
    assert not (tmp_path / "new").exists()
    write_results(tmp_path / "new" / "out", big)  # the same files without the limit
    assert sorted(p.name for p in (tmp_path / "new" / "out").iterdir()) == sorted(RESULT_FILES)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_a_new_out_folder_gets_the_umask_mode(tmp_path: pathlib.Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        write_results(tmp_path / "a" / "out", NEW)
    finally:
        os.umask(old)
    out = tmp_path / "a" / "out"
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~umask)
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == oct(0o777 & ~umask)
    for name in RESULT_FILES:
        assert oct((out / name).stat().st_mode & 0o777) == oct(0o666 & ~umask)  # not 0600
        assert (out / name).read_bytes() == NEW[name]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["out"]


def test_an_existing_out_keeps_its_mode_and_other_files(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(out, 0o750)
    (out / "keep.txt").write_text("mine", encoding="utf8")
    (out / "results.json").write_text("old", encoding="utf8")
    write_results(out, {"results.json": b"new"})
    assert oct(out.stat().st_mode & 0o777) == oct(0o750)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "results.json"]
    assert (out / "results.json").read_text(encoding="utf8") == "new"


# --------------------------------------------------------------------------- data


def test_a_lone_surrogate_in_a_text_is_refused_with_its_line(tmp_path: pathlib.Path, setup: Any,
                                                             capsys: Any) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in ROWS]
    lines[2] = '{"text": "caf\\ud800 au lait", "label": "cooking"}'  # a JSON escape, unpaired
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    with pytest.raises(InputError) as info:
        load_data(path)
    assert str(info.value) == (
        f"{path}, line 3: 'text' holds a lone surrogate '\\ud800' at character 4, which is not "
        f"valid Unicode text; expected text that UTF-8 can encode (a \\ud800-\\udfff escape "
        f"is only valid as the first or second half of a pair)."
    )
    out = tmp_path / "out"
    err = run_main(setup, out, capsys, data=path)
    assert "line 3: 'text' holds a lone surrogate '\\ud800' at character 4" in err
    assert not out.exists()


def test_a_lone_surrogate_in_a_label_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in ROWS] + ['{"text": "Rain.", "label": "weather\\udc80"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    expected = r"line 5: 'label' holds a lone surrogate '\\udc80' at character 8"
    with pytest.raises(InputError, match=expected):
        load_data(path)


def test_a_surrogate_pair_is_text(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "d.jsonl"
    lines = [json.dumps(r) for r in ROWS] + ['{"text": "Goal \\ud83d\\ude00", "label": "sports"}']
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    assert load_data(path).texts[-1] == "Goal \U0001F600"


@pytest.mark.parametrize(
    "header,fragment",
    [
        ("text,label,text", "the header names the column 'text' 2 times (columns 1 and 3)"),
        (
            "label, text ,id,text,text",
            "the header names the column 'text' 3 times (columns 2, 4 and 5)",
        ),
        ("text,label,label", "the header names the column 'label' 2 times (columns 2 and 3)"),
    ],
)
def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: pathlib.Path, header: str,
                                                       fragment: str) -> None:
    path = tmp_path / "d.csv"
    n = len(header.split(","))
    rows = [",".join([f"a{i}"] * n) for i in range(4)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf8")
    with pytest.raises(InputError) as info:
        load_data(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}, line 1: {fragment}, got [")
    assert msg.endswith("expected each of 'text' and 'label' once.")


@pytest.mark.parametrize(
    "content,where",
    [('"te\nxt ok",label\n"a",b\n', "line 1: malformed CSV header"),
     ('text,label\n"a long text",b\n', "line 2: malformed CSV")],
    ids=["header", "row"],
)
def test_a_field_over_the_csv_limit_says_which_line(tmp_path: pathlib.Path, content: str,
                                                     where: str) -> None:
    """csv's own errors (here a field over its size limit) name the line; a broken header
    says it is the header, whatever line the csv reader has reached."""
    import csv

    path = tmp_path / "d.csv"
    path.write_text(content, encoding="utf8")
    limit = csv.field_size_limit(5)  # 'label' fits
    try:
        with pytest.raises(InputError, match=f"^{path}, {where} \\(field larger than field limit"):
            list(load_data(path).texts)
    finally:
        csv.field_size_limit(limit)


def test_a_broken_torch_or_transformers_install_is_an_error_line(tmp_path: pathlib.Path) -> None:
    """An installed transformers that fails to import gives compare's one error line and
    exit code 2, not a traceback."""
    from importlib.util import find_spec

    if find_spec("torch") is None or find_spec("transformers") is None:
        pytest.skip("needs torch and transformers installed (their absence is another error)")
    fake = tmp_path / "fake" / "transformers"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('broken install')\n")
    model = tmp_path / "model"  # a folder that passes the checks made before the import
    model.mkdir()
    (model / "config.json").write_text("{}")
    args = ["compare", "--quiet", "--poolings", "mean", "--repeats", "1", "--model", str(model),
            "--out", str(tmp_path / "out")]
    code = (
        f"import sys; sys.path.insert(0, {str(fake.parent)!r}); from thinc_trf_layers.cli import main; "
        f"sys.exit(main({args!r}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "error: compare needs torch and transformers (ImportError: broken install)"
    ), proc.stderr[-3000:]
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- Ctrl-C


def _interruptible() -> None:
    # The command, like Python, keeps SIGINT ignored if its parent ignores it, as a shell
    # without job control does for a job started in the background (`... &`, nohup): a
    # test run started that way would send its Ctrl-C to a command that cannot get it.
    # The child starts as it would from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: List[str], cwd: pathlib.Path,
           command: Optional[List[str]] = None) -> "subprocess.Popen[str]":
    """The command (``python -m thinc_trf_layers``, or ``command``) with ``args``,
    interruptible by SIGINT whatever this process does with it."""
    command = command or [sys.executable, "-m", "thinc_trf_layers"]
    return subprocess.Popen([*command, *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_interruptible)


def test_ctrl_c_while_reading_the_data_exits_130_with_one_line(tmp_path: pathlib.Path,
                                                               setup: Any) -> None:
    """The data file is a FIFO: the command blocks reading it, and gets Ctrl-C there."""
    fifo = tmp_path / "slow.jsonl"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    proc = _start(["compare", "--data", str(fifo), "--model", str(setup["model"]),
                   "--out", str(out)], tmp_path)
    writer = None
    try:
        deadline = time.monotonic() + 120
        while writer is None:  # opening for writing succeeds once the command reads it
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:
                assert err.errno == errno.ENXIO
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the command never opened its data"
                time.sleep(0.05)
        os.write(writer, (json.dumps(ROWS[0]) + "\n").encode())
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if writer is not None:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert stderr == "interrupted; nothing written.\n"
    assert stdout == ""
    assert not out.exists()


@pytest.mark.parametrize("how", ["python -m", "console script"])
def test_ctrl_c_at_any_moment_of_the_start_writes_nothing(tmp_path: pathlib.Path,
                                                          how: str) -> None:
    """Ctrl-C at several moments of the first seconds: while Python imports Thinc and
    torch (before the command's code runs, Python ends as it does on SIGINT: killed by
    it, or 130 with a KeyboardInterrupt traceback), or once the command waits for its
    data (its one line, 130). Either way an interrupt, and nothing written."""
    script = pathlib.Path(sys.executable).with_name("thinc-trf-layers")
    if how == "console script" and not script.exists():
        pytest.skip(f"no console script beside {sys.executable} (not installed with pip)")
    fifo = tmp_path / "never_written.jsonl"  # if it gets that far, the command waits here
    os.mkfifo(fifo)
    out = tmp_path / "out"
    args = ["compare", "--data", str(fifo), "--out", str(out), "--quiet"]
    for delay in (0.05, 0.3, 0.8, 1.5, 2.5):
        proc = _start(args, tmp_path, [str(script)] if how == "console script" else None)
        try:
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                # Python drops an interrupt that lands in its import lock's callback (it
                # prints "Exception ignored in: <function _get_module_lock...>" and goes
                # on, here to wait for the data): a user presses Ctrl-C again
                proc.send_signal(signal.SIGINT)
                stdout, stderr = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
        # the command's last word, after whatever Python itself printed on an interrupt
        # in an import (a drop as above, _decimal's "MPD_MINALLOC" warning)
        last = (stderr.strip().splitlines() or [""])[-1]
        if proc.returncode == 1:  # an import that turns the KeyboardInterrupt into its error
            # (NumPy's C import replaces it with "Original error was: PyCapsule_Import ...")
            interrupted = ("KeyboardInterrupt", "PyCapsule_Import could not import module")
            assert any(word in stderr for word in interrupted), (delay, stderr)
        else:
            assert proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode, stderr)
            assert last in ("", "interrupted; nothing written.") or last.startswith(
                "KeyboardInterrupt"
            ), (delay, stderr)
        assert stdout == ""
        assert not out.exists()
