#!/usr/bin/env python3
"""Adversarial probe of the `pedagogy` binary (standard library only).

Runs ~2,000 generated cases (fixed seed, so every run makes the same cases) against the binary and
classifies each one as ok / crash / hang / silent loss / unclear error, following the project
standard: bad input gets a clear error naming the file/field with a hint, a non-zero exit, and
nothing already written is lost; never a crash or a hang.

  python3 tests/probe/probe.py                       # every group (about 60 min on 2 cores)
  python3 tests/probe/probe.py --groups 5,6          # a subset (results of other groups are kept)
  python3 tests/probe/probe.py --binary /path/to/pedagogy --jobs 2
  python3 tests/probe/probe.py --summary             # print the table from results.jsonl only

Groups: 1 config files, 2 overrides, 3 problem sets, 4 model folders, 5 grade, 6 tokenize --decode,
7 SFT chat JSONL, 8 faults (signals at random moments), 9 inspector HTTP server, 10 fake
OpenAI-compatible servers, 11 MPI.

Everything is written under $PEDAGOGY_PROBE_DIR (default: build/probe of this checkout): inputs stay
in its work/ so each printed command can be rerun by hand, from work/root, a folder with symlinks to
the source's config/, data/ and prompt_templates/, so nothing is written into the source tree. Tiny
models are made once in its cache/. Each case's command, exit code, duration and output tails go to
its results.jsonl. Every process is started in its own process group and killed at the end.
It is not part of CTest (an hour on 2 cores); docs/testing.md says when to run it.
"""
import argparse
import atexit
import concurrent.futures as cf
import http.client
import json
import math
import os
import random
import re
import shlex
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
import tomllib

SEED = 20261207
sys.set_int_max_str_digits(0)
SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROBE = os.environ.get('PEDAGOGY_PROBE_DIR') or os.path.join(SRC, 'build', 'probe')
WORK = os.path.join(PROBE, 'work')
ROOT = os.path.join(WORK, 'root')        # cwd of every command
CACHE = os.path.join(PROBE, 'cache')     # tiny models, made once
RESULTS = os.path.join(PROBE, 'results.jsonl')
BIN = os.path.join(SRC, 'build', 'pedagogy')
TUTOR = os.path.join(CACHE, 'tutor')
STUDENT = os.path.join(CACHE, 'student')

GROUP_NAMES = {1: 'config files', 2: 'overrides', 3: 'problem sets', 4: 'model folders',
               5: 'grade', 6: 'stdin json (decode..)', 7: 'sft chat jsonl', 8: 'faults (signals)',
               9: 'inspector http', 10: 'fake openai servers', 11: 'mpi'}
CLASSES = ['crash', 'hang', 'silent loss', 'unclear', 'ok']

INT64_MIN, INT64_MAX = -2**63, 2**63 - 1

# Small runs: tiny models from the cache, one torch thread (2 shared cores).
RUN_OV = [f'tutor.model={TUTOR}', f'student.model={STUDENT}', 'cluster.torch_threads=1']
TINY_TRAIN = ['data.max_problems=8', 'train.problems_per_step=2', 'train.samples_per_problem=2',
              'classroom.number_student_attempts=2', 'classroom.max_tutor_turns=1',
              'classroom.max_tokens_per_turn=8', 'classroom.max_tokens_per_student_attempt=8',
              'train.max_steps=4']

# ----------------------------------------------------------------------------------------------
# processes


_live = {}            # pgid -> Popen, for cleanup
_live_lock = threading.Lock()


def _register(p):
    with _live_lock:
        _live[p.pid] = p


def _unregister(p):
    with _live_lock:
        _live.pop(p.pid, None)


def pg_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def pg_kill(pgid, sig=signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup_all():
    with _live_lock:
        items = list(_live.items())
    for pgid, p in items:
        pg_kill(pgid)
        try:
            p.wait(timeout=5)
        except Exception:
            pass


atexit.register(cleanup_all)


def spawn(argv, cwd=ROOT, stdin=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=None):
    p = subprocess.Popen(argv, cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                         stdout=stdout, stderr=stderr, start_new_session=True, env=env)
    _register(p)
    return p


def reap_group(p, grace=1.0):
    """After the leader exits: True when other processes of its group were still running."""
    leftover = False
    end = time.monotonic() + grace
    while pg_alive(p.pid):
        if time.monotonic() > end:
            leftover = True
            break
        time.sleep(0.05)
    pg_kill(p.pid)
    _unregister(p)
    return leftover


def run_proc(argv, timeout, stdin_path=None, cwd=ROOT, env=None):
    t0 = time.monotonic()
    fin = open(stdin_path, 'rb') if stdin_path else None
    try:
        p = spawn(argv, cwd=cwd, stdin=fin, env=env)
        hang = False
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            hang = True
            pg_kill(p.pid)
            out, err = p.communicate()
        dur = time.monotonic() - t0
        leftover = reap_group(p) if not hang else False
    finally:
        if fin:
            fin.close()
    return {'rc': p.returncode, 'stdout': out.decode('utf-8', 'replace'),
            'stderr': err.decode('utf-8', 'replace'), 'duration': round(dur, 2), 'hang': hang,
            'leftover': leftover, 'sent': []}


# ----------------------------------------------------------------------------------------------
# classification

CRASH_RE = re.compile(
    r"terminate called|Segmentation fault|core dumped|what\(\):|\bstd::[a-z_]+|\bc10::|"
    r"Exception raised from|frame #\d|[Ss]tack trace|AddressSanitizer|double free|free\(\): |"
    r"malloc\(\)|corrupted size|__cxa|basic_string::|vector::_M|_M_range_check|"
    r"Assertion `|\bcaf::[a-z_:]*exception|pure virtual method")
INFO_RE = re.compile(r'^\[\d{4}-\d\d-\d\d [\d:.]+\] \[r\d+\] \[[^\]]*\] \[(info|debug|trace)\]')
PROGRESS_RE = re.compile(r'^(rollout|sft step|eval) ')


def err_block(text):
    lines = [ln for ln in text.splitlines() if ln.strip()]
    start = None
    for i, ln in enumerate(lines):
        if re.search(r'error:|\[error\]|\[critical\]', ln, re.I):
            start = i
            break
    if start is None:
        start = 0
    return [ln for ln in lines[start:] if not INFO_RE.match(ln) and not PROGRESS_RE.match(ln)]


def clarity(text, names=(), names_all=(), max_lines=15):
    """(clear?, why not)."""
    if re.search(r'wrote \d+ dialogs to .*\(\d+ failed\)', text) and re.search(r'dialog \S+ failed: .*hint', text):
        return True, ''  # a rollout that reports its failed dialogs, each with its reason
    if not re.search(r'error:|\[error\]|\[critical\]', text, re.I):
        return False, "no 'error:' line"
    if not re.search(r'hint', text, re.I):
        return False, 'no hint'
    if names and not any(n in text for n in names):
        return False, 'does not name %s' % ' / '.join(repr(n) for n in names[:3])
    for n in names_all:
        if n not in text:
            return False, 'does not name %r' % n
    blk = err_block(text)
    if len(blk) > max_lines:
        return False, 'error output is %d lines (a dump)' % len(blk)
    return True, ''


class Case:
    def __init__(self, group, desc, argv, timeout=20, expect='any', why='', names=(),
                 names_all=(), stdin_path=None, check=None, kind=None, runner=None, env=None,
                 clarity_fn=None, sent=()):
        self.id = None
        self.group = group
        self.desc = desc
        self.kind = kind or desc.split(':')[0]
        self.argv = [str(a) for a in argv] if argv else []
        self.timeout = timeout
        self.expect = expect      # 'bad' (must be refused), 'good' (must work), 'any'
        self.why = why
        self.names = list(names)
        self.names_all = list(names_all)
        self.stdin_path = stdin_path
        self.check = check        # fn(result) -> list of problems (silent loss)
        self.runner = runner      # custom: fn(case) -> (result, cls, reason, flags)
        self.env = env
        self.clarity_fn = clarity_fn
        self.flags = []

    def cmdline(self):
        s = 'cd %s && ' % ROOT + shlex.join(self.argv)
        if self.stdin_path:
            s += ' < ' + shlex.quote(self.stdin_path)
        return s


def classify(case, r):
    flags = list(case.flags)
    err, out = r['stderr'], r['stdout']
    if r['hang']:
        return 'hang', 'no exit within %ss' % case.timeout, flags
    rc = r['rc']
    if rc is not None and rc < 0 and -rc not in r.get('sent', []):
        return 'crash', 'killed by %s' % signal.Signals(-rc).name, flags
    m = CRASH_RE.search(err)
    if m:
        line = next((ln for ln in err.splitlines() if m.group(0) in ln), m.group(0))
        return 'crash', 'crash text: ' + line.strip()[:200], flags
    if r.get('leftover'):
        return 'hang', 'processes of its group still running after it exited', flags
    if 'json.exception' in err:
        flags.append('library-exception-text')
    try:
        problems = case.check(r) if case.check else []
    except Exception as e:  # a probe bug must not hide a case
        problems = ['probe check failed: %r' % e]
    problems = [p for p in problems if p]
    review = [p for p in problems if p.startswith('review:')]
    problems = [p for p in problems if not p.startswith('review:')]
    flags += review
    if problems:
        return 'silent loss', '; '.join(problems)[:400], flags
    if rc == 0:
        if case.expect == 'bad':
            return 'silent loss', 'exit 0 on bad input (%s)' % case.why, flags
        return 'ok', '', flags
    if case.expect == 'good':
        flags.append('review: refused input believed valid')
    if case.clarity_fn:
        ok, why = case.clarity_fn(r)
    else:
        ok, why = clarity(err + '\n' + out, case.names, case.names_all)
    if not ok:
        return 'unclear', why, flags
    return 'ok', '', flags


def tail(s, n=1500):
    return s if len(s) <= n else '...' + s[-n:]


def execute(case):
    if case.runner:
        r, cls, reason, flags = case.runner(case)
    else:
        r = run_proc(case.argv, case.timeout, case.stdin_path, env=case.env)
        cls, reason, flags = classify(case, r)
    return {'id': case.id, 'group': case.group, 'desc': case.desc, 'kind': case.kind,
            'cmd': case.cmdline(), 'expect': case.expect, 'why': case.why, 'rc': r.get('rc'),
            'duration': r.get('duration'), 'timeout': case.timeout, 'class': cls,
            'reason': reason, 'flags': flags, 'stdout_tail': tail(r.get('stdout', ''), 800),
            'stderr_tail': tail(r.get('stderr', ''))}


# ----------------------------------------------------------------------------------------------
# helpers

def wpath(*parts):
    p = os.path.join(WORK, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path) and not os.path.isfile(path) or os.path.islink(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    with open(path, 'wb') as f:
        f.write(data.encode() if isinstance(data, str) else data)
    return path


def mkfifo(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.mkfifo(path)
    return path


def symlink(target, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)
    return path


def mkdir(path):
    if os.path.lexists(path) and not os.path.isdir(path):
        os.unlink(path)
    os.makedirs(path, exist_ok=True)
    return path


def special_paths(base, suffix):
    """A FIFO, a folder, a device, /proc/self/mem, a missing file, a symlink loop, a dangling link."""
    a, b = base + '-loop-a' + suffix, base + '-loop-b' + suffix
    symlink(b, a)
    symlink(a, b)
    return [('fifo', mkfifo(base + '-fifo' + suffix)), ('folder', mkdir(base + '-dir' + suffix)),
            ('dev-zero', '/dev/zero'), ('dev-null', '/dev/null'), ('dev-urandom', '/dev/urandom'),
            ('proc-self-mem', '/proc/self/mem'), ('missing', base + '-missing' + suffix),
            ('symlink-loop', a), ('dangling-link', symlink(base + '-nowhere', base + '-dangling' + suffix))]


def jsonl_lines(path):
    """(whole parsed records, problem or None)."""
    if not os.path.exists(path):
        return [], None
    data = open(path, 'rb').read()
    if not data:
        return [], None
    prob = None
    if not data.endswith(b'\n'):
        prob = '%s does not end in a whole line (%d bytes)' % (os.path.basename(path), len(data))
    recs = []
    for i, ln in enumerate(data.split(b'\n')):
        if not ln.strip():
            continue
        try:
            recs.append(json.loads(ln))
        except Exception:
            prob = prob or '%s line %d is not JSON' % (os.path.basename(path), i + 1)
    return recs, prob


def flatten(d, prefix=''):
    out = {}
    for k, v in d.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(flatten(v, key + '.'))
        else:
            out[key] = v
    return out


def same_value(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b


# The config schema, from `config show` of the built-in defaults.
SCHEMA = {}
TABLES = set()


def load_schema():
    r = run_proc([BIN, 'config', 'show'], 60)
    doc = tomllib.loads(r['stdout'])

    def walk(d, prefix):
        for k, v in d.items():
            if isinstance(v, dict):
                TABLES.add(prefix + k)
                walk(v, prefix + k + '.')
            else:
                SCHEMA[prefix + k] = v
    walk(doc, '')


def elem_type(key):
    d = SCHEMA[key]
    if d:
        return type(d[0])
    return int if key.endswith('ranks') else str


def type_ok(key, v):
    d = SCHEMA[key]
    if isinstance(d, bool):
        return isinstance(v, bool)
    if isinstance(d, int):
        return isinstance(v, int) and not isinstance(v, bool)
    if isinstance(d, float):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if isinstance(d, str):
        return isinstance(v, str)
    if isinstance(d, list):
        t = elem_type(key)
        return isinstance(v, list) and all(isinstance(x, t) and not (t is int and isinstance(x, bool)) for x in v)
    return True


def int_range_problems(v, where=''):
    if isinstance(v, bool):
        return []
    if isinstance(v, int) and not INT64_MIN <= v <= INT64_MAX:
        return ['integer %s out of 64-bit range' % where]
    if isinstance(v, list):
        return sum((int_range_problems(x, where) for x in v), [])
    if isinstance(v, dict):
        return sum((int_range_problems(x, k) for k, x in v.items()), [])
    return []


def schema_problems(doc):
    probs = []

    def walk(d, prefix):
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict):
                if key in TABLES:
                    walk(v, key + '.')
                else:
                    probs.append(('unknown key' if key not in SCHEMA else 'table for a value') + ' ' + key)
            elif key in TABLES:
                probs.append('a value where table [%s] belongs' % key)
            elif key not in SCHEMA:
                probs.append('unknown key ' + key)
            else:
                if not type_ok(key, v):
                    probs.append('wrong type for ' + key)
                if isinstance(v, float) and math.isnan(v):
                    probs.append('nan for ' + key)
                probs.extend(int_range_problems(v, key))
    walk(doc, '')
    return probs


def toml_expect(data):
    """How a conforming TOML reader with our schema sees bytes: ('bad', why) or ('any', '')."""
    if data.startswith(b'\xef\xbb\xbf'):
        data = data[3:]  # a UTF-8 byte order mark: accepting it is fine
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as e:
        return 'bad', 'invalid UTF-8 (%s)' % e.reason, None
    try:
        doc = tomllib.loads(text)
    except RecursionError:
        return 'bad', 'nesting too deep for a TOML reader', None
    except (tomllib.TOMLDecodeError, ValueError) as e:
        return 'bad', 'TOML: %s' % str(e)[:100], None
    probs = schema_problems(doc)
    if probs:
        return 'bad', probs[0], doc
    return 'any', '', doc


def config_roundtrip_check(doc, extra_review=None):
    """For an exit-0 `config show`: its TOML parses and holds every value the input set."""
    def check(r):
        if r['rc'] != 0:
            return []
        try:
            shown = flatten(tomllib.loads(r['stdout']))
        except Exception as e:
            return ['config show printed TOML that does not parse: %s' % e]
        probs = []
        if doc is not None:
            for k, v in flatten(doc).items():
                if k == 'inspect.token':
                    continue  # config show redacts the token on purpose
                if k in shown and not same_value(shown[k], v):
                    probs.append('%s = %r was shown as %r' % (k, v if not isinstance(v, str) else v[:40], shown[k] if not isinstance(shown[k], str) else shown[k][:40]))
        if extra_review:
            probs += extra_review(shown)
        return probs
    return check


# ----------------------------------------------------------------------------------------------
# group 1: config files

KEYLINE_RE = re.compile(r'^([A-Za-z0-9_]+)(\s*=\s*)(.*?)(\s*#.*)?$')
HOSTILE_NUMBERS = ['1e308', '-1e308', '1e400', '-1e400', 'nan', '+nan', 'inf', '-inf', '-1', '0',
                   '-0', '9223372036854775807', '-9223372036854775808', '9223372036854775808',
                   '2147483648', '4294967296', '1e-320', '-0.0', '0x7fffffffffffffff', '0o777',
                   '0b101', '1_000_000', '+5', '1.0e+9999', '99999999999999999999999', '1e9',
                   '1000000000', '-2147483649', '5e-324', '1.7976931348623157e308']
HOSTILE_STRINGS = ['"a\\u0000b"', '""', '"\\uD800"', '"%s"' % ('x' * 100000), '"../../../etc/passwd"',
                   '"""multi\nline"""', "'literal \\n'", '"tab\\there"', '"\\U0010FFFF"', '"\\U00110000"',
                   '"日本語"', '"\\x41"', '"unterminated', "'''x'''", '"a\\"b"', '" "', '"\\e"',
                   '"/dev/zero"', '"/proc/self/mem"', '"\\u202e"']
OTHER_TYPES = ['"text"', '42', '4.5', 'true', '[1, 2]', '["a", "b"]', '{ a = 1 }',
               '1979-05-27T07:32:00Z', '07:32:00', '1979-05-27', '[]', '[[1]]', '[1, "a"]']
BAD_BYTES = [b'\xff', b'\xfe\xff', b'\xc3', b'\xc0\xaf', b'\xed\xa0\x80', b'\xf4\x90\x80\x80', b'\x80',
             b'\xef\xbf']
CONTROL = [b'\x00', b'\x01', b'\x7f', b'\x1b', b'\r', b'\x0b', b'\x0c', b'\x08']


def key_lines(text):
    lines = text.split('\n')
    table = ''
    out = []
    for i, ln in enumerate(lines):
        s = ln.strip()
        if s.startswith('[') and s.endswith(']'):
            table = s.strip('[]').strip()
            continue
        m = KEYLINE_RE.match(ln)
        if m:
            out.append((i, table, m))
    return lines, out


def mutate_config(rng, text):
    """-> (bytes, kind)."""
    kinds = ['byte_flip', 'truncate', 'dup_key', 'dup_table', 'unknown_key', 'wrong_type', 'number',
             'number', 'number', 'string', 'deep_array', 'deep_table', 'invalid_utf8', 'control', 'bom',
             'crlf', 'array_of_tables', 'dotted_top', 'move_key', 'delete_line', 'garbage',
             'swap_lines']
    kind = rng.choice(kinds)
    data = text.encode()
    lines, kl = key_lines(text)
    if kind == 'byte_flip':
        b = bytearray(data)
        for _ in range(rng.randint(1, 5)):
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        return bytes(b), kind
    if kind == 'truncate':
        return data[:rng.randrange(len(data))], kind
    if kind == 'dup_key':
        i, _, m = rng.choice(kl)
        new = lines[:i + 1] + [lines[i] if rng.random() < 0.5 else m.group(1) + ' = ' + rng.choice(OTHER_TYPES + ['1'])] + lines[i + 1:]
        return '\n'.join(new).encode(), kind
    if kind == 'dup_table':
        heads = [ln for ln in lines if ln.startswith('[')]
        return (text + '\n' + rng.choice(heads) + '\n').encode(), kind
    if kind == 'unknown_key':
        i, table, m = rng.choice(kl)
        k = m.group(1)
        cands = ['nosuch', k[:-1], k + 's', k.upper(), k.replace('_', '-'), 'max_turns', '__proto__',
                 'ключ', '"quoted key"', k[1:] or 'x']
        name = rng.choice(cands)
        new = lines[:i + 1] + ['%s = %s' % (name, m.group(3))] + lines[i + 1:]
        return '\n'.join(new).encode(), kind
    if kind in ('wrong_type', 'number', 'string', 'deep_array', 'deep_table'):
        if kind == 'number':
            cand = [x for x in kl if re.match(r'^[-+0-9.e_]+$', x[2].group(3))]
        elif kind == 'string':
            cand = [x for x in kl if x[2].group(3).startswith('"')]
        else:
            cand = kl
        i, table, m = rng.choice(cand)
        if kind == 'wrong_type':
            v = rng.choice(OTHER_TYPES)
        elif kind == 'number':
            v = rng.choice(HOSTILE_NUMBERS)
        elif kind == 'string':
            v = rng.choice(HOSTILE_STRINGS)
        elif kind == 'deep_array':
            d = rng.choice([10, 100, 1000, 10000, 100000, 1000000])
            v = '[' * d + '1' + ']' * d
        else:
            d = rng.choice([10, 100, 1000, 10000, 100000])
            v = '{ a = ' * d + '1' + ' }' * d
        lines[i] = m.group(1) + m.group(2) + v + (m.group(4) or '')
        return '\n'.join(lines).encode(), kind + ':' + (v[:24] if len(v) < 200 else 'len%d' % len(v))
    if kind == 'invalid_utf8':
        p = rng.randrange(len(data))
        return data[:p] + rng.choice(BAD_BYTES) + data[p:], kind
    if kind == 'control':
        p = rng.randrange(len(data))
        return data[:p] + rng.choice(CONTROL) + data[p:], kind
    if kind == 'bom':
        return b'\xef\xbb\xbf' + data, kind
    if kind == 'crlf':
        return data.replace(b'\n', b'\r\n'), kind
    if kind == 'array_of_tables':
        heads = [i for i, ln in enumerate(lines) if ln.startswith('[') and not ln.startswith('[[')]
        i = rng.choice(heads)
        lines[i] = '[' + lines[i] + ']'
        return '\n'.join(lines).encode(), kind
    if kind == 'dotted_top':
        i, table, m = rng.choice(kl)
        return ('%s.%s = %s\n' % (table, m.group(1), m.group(3)) + text).encode(), kind
    if kind == 'move_key':
        i, table, m = rng.choice(kl)
        heads = [j for j, ln in enumerate(lines) if ln.startswith('[')]
        j = rng.choice(heads)
        new = lines[:j + 1] + [lines[i]] + lines[j + 1:]
        return '\n'.join(new).encode(), kind
    if kind == 'delete_line':
        i = rng.randrange(len(lines))
        return '\n'.join(lines[:i] + lines[i + 1:]).encode(), kind
    if kind == 'swap_lines':
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return '\n'.join(lines).encode(), kind
    # garbage
    p = rng.randrange(len(data))
    g = bytes(rng.randrange(32, 127) for _ in range(rng.randint(1, 20)))
    return data[:p] + g + data[p:], kind


def absurd_review(doc):
    """Exit-0 review notes for values a sane config should probably refuse."""
    def fn(shown):
        notes = []
        for k, v in flatten(doc or {}).items():
            if isinstance(v, bool):
                continue
            if isinstance(v, int) and (v < 0 or v > 10**9):
                notes.append('review: accepted %s = %d' % (k, v))
            if isinstance(v, float) and (math.isinf(v) or abs(v) > 1e30 or (v != 0 and abs(v) < 1e-300)):
                notes.append('review: accepted %s = %r' % (k, v))
            if isinstance(v, str) and ('\x00' in v or len(v) > 10000):
                notes.append('review: accepted %s = %r' % (k, v[:20] + '...'))
        return notes
    return fn


def group1(rng):
    cases = []
    bases = {n: open(os.path.join(SRC, 'config', n + '.toml')).read() for n in ('tiny', 'tiny-mpi')}
    d = os.path.join(WORK, 'g1')
    for i in range(350):
        name = rng.choice(list(bases))
        data, kind = mutate_config(rng, bases[name])
        path = write(os.path.join(d, 'c%04d-%s.toml' % (i, name)), data)
        expect, why, doc = toml_expect(data)
        cases.append(Case(1, 'config %s (%s)' % (kind, name), [BIN, 'config', 'show', '--config', path],
                          expect=expect, why=why, names=[path], kind='config:' + kind.split(':')[0],
                          check=config_roundtrip_check(doc, absurd_review(doc))))
    # whole-file shapes
    tiny = bases['tiny']
    shapes = [
        ('empty', b''), ('whitespace', b'  \n\t\n'), ('comments only', b'# nothing\n# here\n'),
        ('10000 unknown keys', ('[train]\n' + ''.join('k%d = 1\n' % j for j in range(10000))).encode()),
        ('1000 bad lines', ('\n'.join('bad line %d' % j for j in range(1000))).encode()),
        ('20 MB of comments', b'# ' + b'x' * (20 << 20) + b'\n' + tiny.encode()),
        ('1 MB model string', tiny.replace('"runs/tiny/weights/tutor"', '"' + 'm' * (1 << 20) + '"').encode()),
        ('one 5 MB line', b'x' * (5 << 20)),
        ('nul bytes', b'\x00' * 1000),
        ('random bytes', bytes(random.Random(7).randrange(256) for _ in range(4096))),
        ('utf-16 file', tiny.encode('utf-16')),
        ('deep array 1e6', b'a = ' + b'[' * 10**6),
        ('deep inline table', b'a = ' + b'{b=' * 100000),
        ('only a header', b'[tutor]'),
        ('table as value', b'tutor = 5\n'),
        ('sampling as value', b'[tutor]\nsampling = 1\n'),
        ('inline tables', b'tutor = { model = "x", sampling = { temperature = 0.5 } }\n'),
        ('huge int key', b'[train]\nmax_steps = ' + b'9' * 5000 + b'\n'),
        ('huge float', b'[train]\nlearning_rate = 1' + b'0' * 5000 + b'.0\n'),
        ('all strings nan', b'[train]\nlearning_rate = nan\n'),
        ('lone CR', tiny.replace('\n', '\r').encode()),
        ('key with nul', b'[train]\n"mu\\u0000x" = 1\n'),
        ('emoji keys', '[train]\n"\U0001F600" = 1\n'.encode()),
        ('duplicate tables far apart', (tiny + '\n[tutor]\nmodel = "y"\n').encode()),
    ]
    for name, data in shapes:
        path = write(os.path.join(d, 'shape-%s.toml' % re.sub(r'\W+', '_', name)), data)
        expect, why, doc = toml_expect(data) if len(data) < (30 << 20) else ('any', '', None)
        cases.append(Case(1, 'config shape: ' + name, [BIN, 'config', 'show', '--config', path],
                          expect=expect, why=why, names=[path], kind='config:shape',
                          check=config_roundtrip_check(doc, absurd_review(doc))))
    # special files
    good = write(os.path.join(d, 'good.toml'), tiny)
    for kind, p in special_paths(os.path.join(d, 'special'), '.toml'):
        cases.append(Case(1, 'config file is ' + kind, [BIN, 'config', 'show', '--config', p],
                          expect='bad', why=kind, names=[p], kind='config:special'))
    extra = [('symlink to a good file', symlink(good, os.path.join(d, 'link.toml')), 'any'),
             ('trailing slash', good + '/', 'bad'), ('empty path', '', 'bad'),
             ('name with newline', write(os.path.join(d, 'new\nline.toml'), tiny), 'any'),
             ('/proc/self/status', '/proc/self/status', 'bad'), ('/proc/self/cmdline', '/proc/self/cmdline', 'bad'),
             ('/dev/stdin (closed)', '/dev/stdin', 'bad'), ('/', '/', 'bad'),
             ('mode 000', write(os.path.join(d, 'mode000.toml'), tiny), 'any')]
    os.chmod(extra[-1][1], 0)
    for kind, p, exp in extra:
        cases.append(Case(1, 'config file is ' + kind, [BIN, 'config', 'show', '--config', p],
                          expect=exp, why=kind, names=[p] if p else ['--config', 'config'], kind='config:special'))
    # a handful through `train`: must fail fast, before any model loads
    bad = [c for c in cases if c.expect == 'bad' and c.kind != 'config:special'][:14]
    bad += [c for c in cases if c.kind == 'config:special'][:4]
    for j, c in enumerate(bad):
        run_dir = os.path.join(d, 'train%02d' % j)
        cfg = c.argv[-1]

        def chk(r, run_dir=run_dir):
            p = []
            if r['rc'] != 0 and re.search(r'generator ready|learner ready', r['stderr']):
                p.append('loaded models before refusing the config')
            if r['rc'] != 0 and r['duration'] > 10:
                p.append('review: took %.1f s to refuse a bad config' % r['duration'])
            return p
        cases.append(Case(1, 'train with ' + c.desc, [BIN, 'train', '--config', cfg] + RUN_OV +
                          ['logging.run_dir=' + run_dir], timeout=60, expect='bad', why=c.why,
                          names=[cfg], kind='train-config:' + c.kind.split(':')[1], check=chk))
    return cases


# ----------------------------------------------------------------------------------------------
# group 2: overrides

HOSTILE_VALUES = ['99999999999999999999', '9223372036854775807', '-9223372036854775808',
                  '9223372036854775808', '-1', '0', '1e308', '1e309', '-1e400', 'nan', 'inf', '-inf',
                  '1.5', '0x10', '1_000', '', ' ', '"', '""', '"abc', "'abc'", '"a\nb"', 'a\nb',
                  'true', 'false', 'True', '[1,2]', '[]', '[[1]]', '{a=1}', 'ünïcødé', '日本',
                  '\u202e', 'a b', "'''x'''", '"\\u0000"', '"\\uD800"', 'x' * 100000, '1979-05-27',
                  '--force', '=', 'a=b', '-0', '+1', '1e-400', '0.1', '2147483648', '4294967296',
                  '1e9', '1000000000', '5e-324', '["a"]', '[1, "a"]', '"x"', 'cpu', 'cuda:99',
                  'auto', '\t', 'a\rb', '\\', '$HOME', '../../etc/passwd', '/dev/zero', 'null',
                  '0.0', '-0.0', '1e-10', '3', '64', '1024', '1025', '65536', 'NaN', 'Infinity']


def override_expect(key, value):
    """('bad'|'any', why, candidates for the shown value or None)."""
    if '\n' in value or '\r' in value:
        return 'bad', 'override with a line break', None
    try:
        parsed = tomllib.loads('v = ' + value)['v']
        parsed_ok = True
    except Exception:
        parsed, parsed_ok = None, False
    d = SCHEMA[key]
    if isinstance(d, str):
        cands = [value]
        if parsed_ok and isinstance(parsed, str):
            cands.append(parsed)
        return 'any', '', cands
    if not parsed_ok:
        return 'bad', '%r is not a TOML value for %s' % (value[:20], key), None
    if int_range_problems(parsed):
        return 'bad', 'integer out of 64-bit range', None
    if not type_ok(key, parsed):
        if isinstance(d, list) and type_ok(key, [parsed]):
            return 'any', '', [parsed, [parsed]]
        return 'bad', 'wrong type for %s' % key, None
    if isinstance(parsed, float) and math.isnan(parsed):
        return 'bad', 'nan for %s' % key, None
    return 'any', '', [parsed]


def group2(rng):
    cases = []
    keys = sorted(SCHEMA)
    tiny = os.path.join(SRC, 'config', 'tiny.toml')
    for i in range(270):
        key = rng.choice(keys)
        d = SCHEMA[key]
        if rng.random() < 0.7:
            value = rng.choice(HOSTILE_VALUES)
        elif isinstance(d, bool):
            value = rng.choice(['yes', '1', 'on', 'TRUE'])
        else:
            value = rng.choice(['-%d' % rng.randrange(1, 10**6), str(rng.randrange(10**12)),
                                '%.17g' % rng.uniform(-1e6, 1e6), '1e%d' % rng.randrange(-400, 400)])
        ov = '%s=%s' % (key, value)
        expect, why, cands = override_expect(key, value)
        cfg = ['--config', tiny] if rng.random() < 0.3 else []

        def chk(r, key=key, cands=cands, value=value):
            if r['rc'] != 0 or cands is None:
                return []
            try:
                shown = flatten(tomllib.loads(r['stdout']))
            except Exception as e:
                return ['config show printed TOML that does not parse: %s' % e]
            if key not in shown:
                return ['%s missing from the shown config' % key]
            if key == 'inspect.token':
                return []  # redacted by config show on purpose
            if not any(same_value(shown[key], c) for c in cands):
                return ['override %s=%r shown as %r' % (key, value[:30], shown[key] if not isinstance(shown[key], str) else shown[key][:30])]
            v = shown[key]
            if isinstance(v, int) and not isinstance(v, bool) and (v < 0 or v > 10**9):
                return ['review: accepted %s = %d' % (key, v)]
            if isinstance(v, float) and (math.isinf(v) or abs(v) > 1e30):
                return ['review: accepted %s = %r' % (key, v)]
            return []
        cases.append(Case(2, 'override %s=%s' % (key, value[:30].replace('\n', '\\n')),
                          [BIN, 'config', 'show'] + cfg + [ov], expect=expect, why=why,
                          names=[key, ov[:40]], kind='override:' + type(d).__name__, check=chk))
    malformed = ['train.nosuch=1', 'nosuch.key=1', 'train=1', 'tutor.sampling=1', '.mu=1', 'train.=1',
                 'train..mu=1', 'TRAIN.MU=1', 'train.mu =1', ' train.mu=1', 'train.mu', '=1', '==',
                 'train.mu==1', 'tutor.sampling.nosuch=1', 'tutor.openai.base_url.x=1', 'ключ.ключ=1',
                 'train.mu=1=2', 'a.b.c.d.e=1', 'x' * 100000 + '=1', 'train.learning_rate=1e-6\n',
                 'tutor.model=a\x7fb', '-c', '--force', 'train.mu=\t1', 'judge.rules=[]',
                 'classroom.judge_rules=["nosuch_rule"]', 'classroom.personas=[]', 'train.mu=1 train.mu=2']
    for ov in malformed:
        bad = ov not in ('train.mu=1=2', 'train.mu=\t1', 'classroom.judge_rules=["nosuch_rule"]',
                         'classroom.personas=[]', 'train.mu =1', 'tutor.model=a\x7fb')
        cases.append(Case(2, 'override form %r' % ov[:40], [BIN, 'config', 'show', ov],
                          expect='bad' if bad else 'any', why='malformed override',
                          names=[ov[:20], ov.split('=')[0][:20] or '=', 'override'], kind='override:form'))
    return cases


# ----------------------------------------------------------------------------------------------
# group 3: problem sets

def prow(i):
    a, b = 3 + i * 7 % 50, 11 + i * 13 % 40
    return json.dumps({'problem': 'What is %d + %d?' % (a, b), 'answer': str(a + b)})


DEEP = 100000
ROW_MUTATIONS = [
    # name, row bytes (or callable), expectation, literal answer to check (single-row files)
    ('not json', b'this is not json', 'bad'), ('array row', b'["problem", "answer"]', 'bad'),
    ('string row', b'"problem"', 'bad'), ('number row', b'42', 'bad'), ('null row', b'null', 'bad'),
    ('true row', b'true', 'bad'), ('empty object', b'{}', 'bad'),
    ('missing problem', b'{"answer": "5"}', 'bad'), ('missing answer', b'{"problem": "What is 2+3?"}', 'bad'),
    ('problem number', b'{"problem": 5, "answer": "5"}', 'any'),
    ('answer number', b'{"problem": "What is 2+3?", "answer": 5}', 'good'),
    ('answer null', b'{"problem": "What is 2+3?", "answer": null}', 'bad'),
    ('answer bool', b'{"problem": "What is 2+3?", "answer": true}', 'bad'),
    ('answer array', b'{"problem": "What is 2+3?", "answer": [5]}', 'bad'),
    ('answer object', b'{"problem": "What is 2+3?", "answer": {"v": 5}}', 'bad'),
    ('problem null', b'{"problem": null, "answer": "5"}', 'bad'),
    ('problem array', b'{"problem": ["a"], "answer": "5"}', 'bad'),
    ('problem object', b'{"problem": {}, "answer": "5"}', 'bad'),
    ('huge problem 1MB', lambda: json.dumps({'problem': 'word ' * 200000, 'answer': '5'}).encode(), 'any'),
    ('huge answer 1MB', lambda: json.dumps({'problem': 'What?', 'answer': '9' * 1000000}).encode(), 'any'),
    ('escaped NUL', b'{"problem": "What is 2\\u0000+3?", "answer": "5\\u0000"}', 'any'),
    ('raw NUL byte', b'{"problem": "What is 2\x00+3?", "answer": "5"}', 'bad'),
    ('raw control byte', b'{"problem": "What is 2\x01+3?", "answer": "5"}', 'bad'),
    ('invalid utf8', b'{"problem": "What is \xff\xfe 2+3?", "answer": "5"}', 'bad'),
    ('truncated utf8', b'{"problem": "What is \xc3", "answer": "5"}', 'bad'),
    ('overlong utf8', b'{"problem": "What is \xc0\xaf", "answer": "5"}', 'bad'),
    ('encoded surrogate', b'{"problem": "What is \xed\xa0\x80", "answer": "5"}', 'bad'),
    ('lone surrogate escape', b'{"problem": "What is \\ud800?", "answer": "5"}', 'bad'),
    ('trailing comma', b'{"problem": "What is 2+3?", "answer": "5",}', 'bad'),
    ('trailing garbage', b'{"problem": "What is 2+3?", "answer": "5"} xyz', 'bad'),
    ('two objects', b'{"problem": "a", "answer": "1"}{"problem": "b", "answer": "2"}', 'bad'),
    ('deep nested extra field', lambda: b'{"problem": "What is 2+3?", "answer": "5", "x": ' + b'[' * DEEP + b']' * DEEP + b'}', 'any'),
    ('deep nested row', lambda: b'[' * DEEP + b']' * DEEP, 'bad'),
    ('deep unclosed', lambda: b'{"a":' * DEEP, 'bad'),
    ('gsm8k answer', b'{"problem": "Natalia sold clips to 48 friends...", "answer": "Natalia sold 48/2 = 24 clips.\\n#### 72"}', 'any'),
    ('extra fields', b'{"problem": "What is 2+3?", "answer": "5", "level": 3, "meta": {"a": [1]}}', 'good'),
    ('duplicate keys', b'{"problem": "a", "answer": "1", "answer": "2"}', 'any'),
    ('empty problem', b'{"problem": "", "answer": "5"}', 'any'),
    ('empty answer', b'{"problem": "What is 2+3?", "answer": ""}', 'any'),
    ('blank answer', b'{"problem": "What is 2+3?", "answer": "   "}', 'any'),
    ('unicode', '{"problem": "Combien font 2 + 3 ? 日本語 🙂", "answer": "５"}'.encode(), 'good'),
    ('answer 1e400', b'{"problem": "What is big?", "answer": 1e400}', 'any'),
    ('answer -0', b'{"problem": "What is 0?", "answer": -0}', 'good'),
    ('capitalised keys', b'{"Problem": "What is 2+3?", "Answer": "5"}', 'bad'),
    ('escaped key', b'{"pro\\u0062lem": "What is 2+3?", "answer": "5"}', 'good'),
    ('leading spaces', b'    {"problem": "What is 2+3?", "answer": "5"}   ', 'good'),
    ('tab row', b'\t', 'any'),
    ('only a comma', b',', 'bad'),
    ('json5 comment', b'// {"problem": "a", "answer": "1"}', 'bad'),
    ('python dict', b"{'problem': 'a', 'answer': '1'}", 'bad'),
    ('huge number answer', b'{"problem": "What?", "answer": ' + b'9' * 5000 + b'}', 'any'),
]
DIGIT_CHECKS = [('bigint answer', '123456789012345678901234567890'), ('0.1 answer', '0.1'),
                ('1e5 answer', '1e5'), ('1.50 answer', '1.50'), ('-7 answer', '-7'),
                ('1E+2 answer', '1E+2')]


def records_check(path, want, digits=None):
    def check(r):
        recs, prob = jsonl_lines(path)
        p = [prob] if prob else []
        if r['rc'] == 0:
            if len(recs) != want:
                p.append('exit 0 but %d records in %s (expected %d)' % (len(recs), os.path.basename(path), want))
            if digits is not None:
                for rec in recs:
                    if rec.get('answer') != digits:
                        p.append('answer %s kept as %r' % (digits, rec.get('answer')))
                        break
        return p
    return check


def unchanged_check(path, before):
    def check(r):
        try:
            now = open(path, 'rb').read()
        except Exception as e:
            return ['%s unreadable after the run: %s' % (path, e)]
        if r['rc'] != 0 and now != before:
            return ['refused, but %s changed (%d -> %d bytes)' % (path, len(before), len(now))]
        return []
    return check


def rollout_argv(problems, out, extra=()):
    return ([BIN, 'rollout', '--config', 'config/tiny.toml', '--limit', '1', '--samples', '2'] +
            (['--problems', problems] if problems is not None else []) + ['--out', out] + RUN_OV + list(extra))


def group3(rng):
    cases = []
    d = os.path.join(WORK, 'g3')
    files = []   # (desc, path, expect, why, digits)
    for i in range(150):
        name, row, exp = rng.choice(ROW_MUTATIONS)
        row = row() if callable(row) else row
        rows = [prow(i * 10 + j).encode() for j in range(4)]
        rows.insert(rng.randrange(5), row)
        sep = b'\r\n' if rng.random() < 0.15 else b'\n'
        if rng.random() < 0.15:
            rows.insert(rng.randrange(len(rows)), b'')
        data = sep.join(rows) + (sep if rng.random() < 0.8 else b'')
        path = write(os.path.join(d, 'p%04d.jsonl' % i), data)
        files.append(('row ' + name, path, exp if exp != 'good' else 'good', name, None))
    for name, lit in DIGIT_CHECKS:
        path = write(os.path.join(d, re.sub(r'\W+', '_', name) + '.jsonl'),
                     '{"problem": "What is the number?", "answer": %s}\n' % lit)
        files.append(('digits: ' + name, path, 'good', '', lit))
    whole = [('empty file', b'', 'bad'), ('blank lines only', b'\n\n  \n', 'bad'),
             ('no trailing newline', prow(1).encode(), 'good'),
             ('bom', b'\xef\xbb\xbf' + prow(2).encode() + b'\n', 'any'),
             ('10k rows', ('\n'.join(prow(j) for j in range(10000)) + '\n').encode(), 'good'),
             ('100k rows', ('\n'.join(prow(j) for j in range(100000)) + '\n').encode(), 'good'),
             ('30 MB line', b'{"problem": "' + b'a' * (30 << 20) + b'", "answer": "1"}', 'any'),
             ('only CR separators', (prow(1) + '\r' + prow(2) + '\r').encode(), 'any'),
             ('utf-16', (prow(1) + '\n').encode('utf-16'), 'bad'),
             ('gzip bytes', b'\x1f\x8b\x08\x00' + bytes(range(256)), 'bad'),
             ('binary garbage', bytes(random.Random(3).randrange(256) for _ in range(10000)), 'bad')]
    for name, data, exp in whole:
        files.append(('file ' + name, write(os.path.join(d, 'w-' + re.sub(r'\W+', '_', name) + '.jsonl'), data), exp, name, None))
    for kind, p in special_paths(os.path.join(d, 'special'), '.jsonl'):
        files.append(('file is ' + kind, p, 'bad', kind, None))
    for j, (desc, path, exp, why, digits) in enumerate(files):
        out = os.path.join(d, 'out', 'r%04d.jsonl' % j)
        cases.append(Case(3, 'rollout problems ' + desc, rollout_argv(path, out), timeout=120,
                          expect=exp, why=why, names=[path], kind='rollout:' + desc.split(':')[0][:28],
                          check=records_check(out, 2, digits)))
    # eval and train on a subset
    sub = [f for f in files if not f[0].startswith('digits')]
    picks = rng.sample(sub, 22) + [f for f in files if f[0] in ('file is fifo', 'file 10k rows')]
    for j, (desc, path, exp, why, digits) in enumerate(picks):
        out = os.path.join(d, 'eval', 'e%03d' % j)
        cases.append(Case(3, 'eval problems ' + desc,
                          [BIN, 'eval', '--config', 'config/tiny.toml', '--limit', '1', '--problems', path,
                           '--out', out] + RUN_OV, timeout=120, expect=exp, why=why, names=[path],
                          kind='eval:' + desc[:28]))
    picks = rng.sample(sub, 14) + [f for f in files if f[0] == 'file is folder']
    for j, (desc, path, exp, why, digits) in enumerate(picks):
        run_dir = os.path.join(d, 'train', 't%03d' % j)
        cases.append(Case(3, 'train data.train ' + desc,
                          [BIN, 'train', '--config', 'config/tiny.toml', 'data.train=' + path,
                           'logging.run_dir=' + run_dir] + RUN_OV + TINY_TRAIN[:-1] + ['train.max_steps=1'],
                          timeout=120, expect=exp, why=why, names=[path], kind='train:' + desc[:28]))
    # where the records go
    good = write(os.path.join(d, 'good.jsonl'), prow(1) + '\n' + prow(2) + '\n')
    notrec = write(os.path.join(d, 'outs', 'notes.txt'), 'my precious notes\n')
    earlier = os.path.join(d, 'outs', 'earlier.jsonl')
    outs = [('--out is a fifo', mkfifo(os.path.join(d, 'outs', 'fifo.jsonl')), [], 'bad'),
            ('--out is a folder', mkdir(os.path.join(d, 'outs', 'dir.jsonl')), [], 'bad'),
            ('--out is /dev/full', '/dev/full', [], 'bad'), ('--out is /dev/null', '/dev/null', [], 'bad'),
            ('--out is /proc/self/mem', '/proc/self/mem', ['--force'], 'bad'),
            ('--out in a missing folder', os.path.join(d, 'outs', 'no', 'such', 'x.jsonl'), [], 'any'),
            ('--out is a notes file', notrec, [], 'bad'), ('--out is a notes file, --force', notrec, ['--force'], 'bad'),
            ('--out is the problems file, --force', good, ['--force'], 'bad'),
            ('--out is a link to notes, --force', symlink(notrec, os.path.join(d, 'outs', 'link.jsonl')), ['--force'], 'bad'),
            ('--out is the config, --force', write(os.path.join(d, 'outs', 'cfg.toml'), open(os.path.join(SRC, 'config/tiny.toml')).read()), ['--force'], 'bad'),
            ('--out is model weights, --force', os.path.join(d, 'outs', 'weights.safetensors'), ['--force'], 'bad'),
            ('--out holds earlier records', earlier, [], 'bad'),
            ('--out holds earlier records, --force', earlier + '2', ['--force'], 'good'),
            ('--out holds a half record, --force', write(os.path.join(d, 'outs', 'half.jsonl'), '{"id": "0/0/0", "status": "ok"'), ['--force'], 'any')]
    for desc, out, extra, exp in outs:
        argv = rollout_argv(good, out) + extra
        before = None

        def chk(r, out=out, desc=desc):
            p = []
            if os.path.isfile(out) and before_map.get(out) is not None:
                p += unchanged_check(out, before_map[out])(r)
            if r['rc'] == 0 and os.path.isfile(out) and not out.startswith('/dev'):
                p += records_check(out, 2)(r)
            return p
        cases.append(Case(3, 'rollout ' + desc, argv, timeout=120, expect=exp, why=desc,
                          names=[out], kind='rollout-out:' + desc, check=chk))
    return cases


before_map = {}


def prepare_group3():
    """Files whose content a refused run must leave alone (made right before the group runs)."""
    d = os.path.join(WORK, 'g3')
    earlier = os.path.join(d, 'outs', 'earlier.jsonl')
    r = run_proc(rollout_argv(os.path.join(d, 'good.jsonl'), earlier, ['--force']), 120)
    shutil.copy(earlier, earlier + '2')
    shutil.copy(os.path.join(TUTOR, 'model.safetensors'), os.path.join(d, 'outs', 'weights.safetensors'))
    for p in ['notes.txt', 'earlier.jsonl', 'cfg.toml', 'weights.safetensors']:
        full = os.path.join(d, 'outs', p)
        before_map[full] = open(full, 'rb').read()
    before_map[os.path.join(d, 'good.jsonl')] = open(os.path.join(d, 'good.jsonl'), 'rb').read()
    before_map[os.path.join(d, 'outs', 'link.jsonl')] = before_map[os.path.join(d, 'outs', 'notes.txt')]
    return r['rc']


# ----------------------------------------------------------------------------------------------
# group 4: model folders

def st_read(path):
    data = open(path, 'rb').read()
    n = struct.unpack('<Q', data[:8])[0]
    return n, json.loads(data[8:8 + n]), data[8 + n:], data


def st_pack(hdr, body, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(hdr).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    return struct.pack('<Q', len(h)) + h + body


def tensors(hdr):
    return sorted(k for k in hdr if k != '__metadata__')


def corrupt_config(rng, cfg):
    """-> (new bytes, desc, expect)."""
    c = dict(cfg)
    req = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size',
           'intermediate_size', 'model_type']
    opt = ['rope_theta', 'rms_norm_eps', 'head_dim', 'torch_dtype', 'max_position_embeddings',
           'bos_token_id', 'eos_token_id', 'hidden_act', 'architectures', 'tie_word_embeddings',
           'num_key_value_heads', 'rope_scaling', 'use_sliding_window', 'attention_bias']
    size_keys = ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'vocab_size',
                 'intermediate_size', 'head_dim', 'num_key_value_heads']
    k = rng.choice(['missing_req', 'missing_opt', 'wrong_type', 'huge', 'negative', 'zero',
                    'vocab_mismatch', 'bad_value', 'bad_value', 'text', 'dup_key', 'float_size'])
    if k == 'missing_req':
        f = rng.choice(req)
        c.pop(f, None)
        return json.dumps(c).encode(), 'config.json without ' + f, 'bad', f
    if k == 'missing_opt':
        f = rng.choice(opt)
        c.pop(f, None)
        return json.dumps(c).encode(), 'config.json without ' + f, 'any', f
    if k == 'wrong_type':
        f = rng.choice(size_keys + ['rope_theta', 'rms_norm_eps', 'model_type', 'torch_dtype', 'eos_token_id', 'tie_word_embeddings'])
        v = rng.choice(['"64"', 'true', 'null', '[64]', '{}', '"abc"', '64.5'])
        c[f] = json.loads(v)
        return json.dumps(c).encode(), 'config.json %s = %s' % (f, v), 'bad' if f in size_keys + ['model_type'] or v in ('null', '{}', '"abc"') else 'any', f
    if k in ('huge', 'negative', 'zero', 'float_size'):
        f = rng.choice(size_keys + ['max_position_embeddings'])
        v = {'huge': rng.choice([10**9, 2**31, 2**32 + 64, 2**40, 2**62, 2**63 - 1, 2**64, 10**30]),
             'negative': rng.choice([-1, -64, -2**31, -2**63]), 'zero': 0,
             'float_size': rng.choice([1e9, 64.0, 1e308, 6.4e1])}[k]
        c[f] = v
        exp = 'any' if f == 'max_position_embeddings' and k == 'huge' else 'bad'
        if k == 'float_size' and v == 64.0 and f in ('hidden_size',):
            exp = 'any'
        if k == 'float_size' and v == 64.0 and cfg.get(f) != 64:
            exp = 'bad'
        return json.dumps(c).encode(), 'config.json %s = %r' % (f, v), exp, f
    if k == 'vocab_mismatch':
        v = rng.choice([100, 256, 321, 319, 1, 1 << 20])
        c['vocab_size'] = v
        return json.dumps(c).encode(), 'config.json vocab_size = %d' % v, 'bad', 'vocab_size'
    if k == 'bad_value':
        f, v = rng.choice([('rope_theta', -1.0), ('rope_theta', 0.0), ('rms_norm_eps', 0.0), ('rms_norm_eps', -1e-6),
                           ('hidden_act', 'gelu'), ('hidden_act', ''), ('model_type', 'gpt2'), ('model_type', ''),
                           ('use_sliding_window', True), ('rope_scaling', {'type': 'yarn', 'factor': 4.0}),
                           ('rope_scaling', {'rope_type': 'llama3'}), ('rope_scaling', {'rope_type': 'linear', 'factor': -1.0}),
                           ('torch_dtype', 'bfloat16'), ('torch_dtype', 'int8'), ('torch_dtype', 'float64'),
                           ('bos_token_id', 999999), ('eos_token_id', [258, 99999]), ('eos_token_id', -1),
                           ('eos_token_id', 2**40), ('num_key_value_heads', 3), ('head_dim', 17),
                           ('rope_theta', 1e308), ('rms_norm_eps', 1e308), ('max_position_embeddings', 1),
                           ('architectures', ['GPT2LMHeadModel']), ('tie_word_embeddings', not cfg.get('tie_word_embeddings')),
                           ('rope_parameters', {'rope_theta': -5.0, 'rope_type': 'default'})])
        c[f] = v
        exp = 'any' if f in ('architectures', 'max_position_embeddings', 'rope_theta', 'rms_norm_eps') and v in (['GPT2LMHeadModel'], 1, 1e308) else 'bad'
        return json.dumps(c).encode(), 'config.json %s = %s' % (f, json.dumps(v)), exp, f
    if k == 'dup_key':
        s = json.dumps(cfg)
        s = s[:-1] + ', "hidden_size": 128}'
        return s.encode(), 'config.json duplicate hidden_size (last 128)', 'bad', 'hidden_size'
    s = json.dumps(cfg).encode()
    v = rng.choice([s[:rng.randrange(len(s))], b'', b'[]', b'null', b'not json', b'{"a":' * 100000,
                    b'[' * 1000000, s.replace(b'"hidden_size": 64', b'"hidden_size": NaN'),
                    s.replace(b'"hidden_size": 64', b'"hidden_size": 1e400'), b'\xef\xbb\xbf' + s, s + b'garbage'])
    return v, 'config.json text %r' % v[:20], 'any' if v.startswith(b'\xef\xbb\xbf') else 'bad', 'config.json'


def corrupt_tokenizer(rng, tok, vocab_size):
    t = json.loads(json.dumps(tok))
    k = rng.choice(['truncate', 'text', 'vocab_type', 'vocab_id', 'added_id', 'added_id', 'added_type',
                    'merges_huge', 'merges_unknown', 'merges_pairs', 'model_type', 'no_model',
                    'pretok', 'decoder', 'normalizer', 'deep', 'vocab_huge', 'dup_added', 'added_content'])
    s = json.dumps(tok).encode()
    if k == 'truncate':
        return s[:rng.randrange(len(s))], 'tokenizer.json truncated', 'bad'
    if k == 'text':
        v = rng.choice([b'', b'[]', b'null', b'{}', b'not json', b'\xff\xfe' + s, s + b'}'])
        return v, 'tokenizer.json text %r' % v[:12], 'bad'
    m = t['model']
    if k == 'vocab_type':
        m['vocab'] = rng.choice([[], 'abc', 5, None, [['a', 1]]])
        return json.dumps(t).encode(), 'tokenizer.json model.vocab = %s' % json.dumps(m['vocab'])[:20], 'bad'
    if k == 'vocab_id':
        key = rng.choice(sorted(m['vocab']))
        v = rng.choice([-1, 2**40, 2**63, '5', 1.5, None, vocab_size + 5, 2**31])
        m['vocab'][key] = v
        return json.dumps(t).encode(), 'tokenizer.json vocab[%r] = %r' % (key, v), 'bad'
    if k in ('added_id', 'added_type'):
        a = rng.choice(t['added_tokens'])
        if k == 'added_id':
            a['id'] = rng.choice([2**40, -1, -2**63, 2**63, 2**31, vocab_size, vocab_size + 1000, 10**20])
            # beyond config.json's vocab_size but a valid id: only a command that reads config.json can tell
            return json.dumps(t).encode(), 'tokenizer.json added token %s' % json.dumps(a)[:60], 'bad' if a['id'] < 0 or a['id'] > 2**31 else 'vocab'
        else:
            a[rng.choice(['id', 'content', 'special'])] = rng.choice(['7', None, [1], {'x': 1}, 3.5])
        return json.dumps(t).encode(), 'tokenizer.json added token %s' % json.dumps(a)[:60], 'bad'
    if k == 'dup_added':
        t['added_tokens'].append({'content': '<|dup|>', 'id': t['added_tokens'][0]['id'], 'special': True})
        return json.dumps(t).encode(), 'tokenizer.json two added tokens share an id', 'any'
    if k == 'added_content':
        t['added_tokens'].append({'content': rng.choice(['', 'a' * 100000, '\u0000', 'Ġ']), 'id': 300, 'special': True})
        return json.dumps(t).encode(), 'tokenizer.json added token with odd content', 'any'
    if k == 'merges_huge':
        keys = sorted(m['vocab'])[:200]
        n = rng.choice([10000, 100000, 300000])
        r2 = random.Random(n)
        m['merges'] = ['%s %s' % (r2.choice(keys), r2.choice(keys)) for _ in range(n)]
        return json.dumps(t).encode(), 'tokenizer.json %d merges whose results are not in the vocab' % n, 'any'
    if k == 'merges_unknown':
        m['merges'] = rng.choice([['zz qq'], ['a'], ['a b c'], [''], [5], [['a']], ['Ġ Ġ'] * 3])
        return json.dumps(t).encode(), 'tokenizer.json merges %s' % json.dumps(m['merges'])[:30], 'bad'
    if k == 'merges_pairs':
        m['merges'] = [['h', 'e'], ['l', 'l']]
        m['vocab']['he'] = 300
        m['vocab']['ll'] = 301
        return json.dumps(t).encode(), 'tokenizer.json merges as pairs (valid)', 'any'
    if k == 'model_type':
        m['type'] = rng.choice(['WordPiece', 'Unigram', 'WordLevel', '', None, 5])
        return json.dumps(t).encode(), 'tokenizer.json model.type = %r' % (m['type'],), 'bad'
    if k == 'no_model':
        del t['model']
        return json.dumps(t).encode(), 'tokenizer.json without model', 'bad'
    if k == 'pretok':
        t['pre_tokenizer'] = rng.choice([{'type': 'Nope'}, {'type': 'Split', 'pattern': {'Regex': '('}, 'behavior': 'Isolated', 'invert': False},
                                         {'type': 'Split', 'pattern': {'Regex': '(a*)*b'}, 'behavior': 'Isolated', 'invert': False},
                                         {'type': 'Sequence', 'pretokenizers': 5}, 5])
        return json.dumps(t).encode(), 'tokenizer.json pre_tokenizer %s' % json.dumps(t['pre_tokenizer'])[:50], 'bad' if t['pre_tokenizer'] != {'type': 'Split', 'pattern': {'Regex': '(a*)*b'}, 'behavior': 'Isolated', 'invert': False} else 'any'
    if k == 'decoder':
        t['decoder'] = rng.choice([{'type': 'Nope'}, None, 5, {'type': 'Sequence', 'decoders': [{'type': 'Nope'}]}])
        return json.dumps(t).encode(), 'tokenizer.json decoder %s' % json.dumps(t['decoder'])[:40], 'any' if t['decoder'] is None else 'bad'
    if k == 'normalizer':
        t['normalizer'] = rng.choice([{'type': 'Nope'}, {'type': 'NFKD'}, {'type': 'Lowercase'}, None, 'NFC'])
        return json.dumps(t).encode(), 'tokenizer.json normalizer %s' % json.dumps(t['normalizer'])[:40], 'any' if t['normalizer'] in ({'type': 'NFKD'}, {'type': 'Lowercase'}, None) else 'bad'
    if k == 'deep':
        s2 = s[:-1] + b', "deep": ' + b'[' * 200000 + b']' * 200000 + b'}'
        return s2, 'tokenizer.json with a 200000-deep array field', 'any'
    # vocab_huge
    for j in range(300000):
        m['vocab']['tok%d' % j] = 1000 + j
    return json.dumps(t).encode(), 'tokenizer.json with 300000 extra vocab entries', 'any'


def corrupt_tokcfg(rng, tc):
    c = dict(tc)
    k = rng.choice(['bad_jinja', 'unknown_template', 'template_type', 'eos_missing', 'eos_dict', 'text', 'huge_template', 'wrong_types'])
    if k == 'bad_jinja':
        c['chat_template'] = rng.choice(['{% for m in messages %}', '{{ messages[0]["content"] }', '{% if %}{% endif %}',
                                         '{{ raise_exception("x") }}', '{% for m in messages %}{{ m.content }}{% endfor',
                                         '{{' * 1000])
        return json.dumps(c).encode(), 'tokenizer_config.json chat_template %r' % c['chat_template'][:30], 'bad'
    if k == 'unknown_template':
        c['chat_template'] = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}'
        return json.dumps(c).encode(), 'tokenizer_config.json an unknown (valid) chat_template', 'bad'
    if k == 'template_type':
        c['chat_template'] = rng.choice([5, None, [], [{'name': 'default', 'template': '{{ x }}'}], {'a': 1}])
        return json.dumps(c).encode(), 'tokenizer_config.json chat_template = %s' % json.dumps(c['chat_template'])[:30], 'any' if c['chat_template'] is None else 'bad'
    if k == 'eos_missing':
        c['eos_token'] = rng.choice(['<|nope|>', '', 'a' * 10000])
        return json.dumps(c).encode(), 'tokenizer_config.json eos_token %r' % c['eos_token'][:12], 'eos'
    if k == 'eos_dict':
        c['eos_token'] = {'content': tc.get('eos_token'), 'lstrip': False, '__type': 'AddedToken'}
        return json.dumps(c).encode(), 'tokenizer_config.json eos_token as AddedToken dict', 'any'
    if k == 'huge_template':
        c['chat_template'] = 'x' * (10 << 20)
        return json.dumps(c).encode(), 'tokenizer_config.json 10 MB chat_template', 'bad'
    if k == 'wrong_types':
        f = rng.choice(['eos_token', 'bos_token', 'pad_token', 'model_max_length', 'added_tokens_decoder'])
        c[f] = rng.choice([5, [1], {'x': [1]}, -1, 'x'])
        return json.dumps(c).encode(), 'tokenizer_config.json %s = %s' % (f, json.dumps(c[f])), 'any'
    s = json.dumps(tc).encode()
    v = rng.choice([s[:len(s) // 2], b'', b'[]', b'not json', b'{"a":' * 100000])
    return v, 'tokenizer_config.json text %r' % v[:12], 'bad'


def corrupt_safetensors(rng, path):
    n, hdr, body, data = st_read(path)
    names = tensors(hdr)
    k = rng.choice(['truncate', 'truncate', 'hdr_len', 'hdr_text', 'dtype', 'shape', 'offsets', 'missing',
                    'extra', 'rename', 'nan', 'nan', 'meta', 'overflow_shape', 'overlap', 'padding', 'empty'])
    if k == 'truncate':
        cut = rng.choice([rng.randrange(8), rng.randrange(8, 8 + n), rng.randrange(8 + n, len(data))])
        return data[:cut], 'model.safetensors truncated at %d of %d' % (cut, len(data)), 'bad'
    if k == 'hdr_len':
        v = rng.choice([2**64 - 1, 2**63, 2**40, len(data), len(data) - 7, 0, 1, n + 1, n - 1, 100 << 20])
        return struct.pack('<Q', v) + data[8:], 'model.safetensors header length %d' % v, 'bad'
    if k == 'hdr_text':
        v = rng.choice([b'x' * n, b'[' * n, b'\xff' * n, (b'{"a":' * (n // 5 + 1))[:n], b'\x00' * n,
                        json.dumps(hdr).encode()[:n // 2].ljust(n)])
        return data[:8] + v + data[8 + n:], 'model.safetensors header %r...' % v[:8], 'bad'
    t = rng.choice(names)
    h = json.loads(json.dumps(hdr))
    if k == 'dtype':
        h[t]['dtype'] = rng.choice(['F99', 'F16', 'BF16', 'I64', 'F64', 'BOOL', '', 'f32', 'U8'])
        return st_pack(h, body), 'model.safetensors %s dtype %s' % (t, h[t]['dtype']), 'bad'
    if k == 'shape':
        s = h[t]['shape']
        h[t]['shape'] = rng.choice([s[::-1] if len(s) > 1 and s[0] != s[-1] else s + [1], [], [-1] + s[1:],
                                    [s[0] + 1] + s[1:], [0] + s[1:], s + [1], ['a'], [1.5]])
        exp = 'any' if h[t]['shape'] == s + [1] and False else 'bad'
        return st_pack(h, body), 'model.safetensors %s shape %s (was %s)' % (t, h[t]['shape'], s), exp
    if k == 'overflow_shape':
        h[t]['shape'] = rng.choice([[2**32, 2**32], [2**62, 4], [2**63 - 1], [2**64], [-2**63, -1]])
        return st_pack(h, body), 'model.safetensors %s shape %s' % (t, h[t]['shape']), 'bad'
    if k == 'offsets':
        b, e = h[t]['data_offsets']
        h[t]['data_offsets'] = rng.choice([[0, 2**62], [e, b], [-4, e], [b, len(body) + 4], [b + 4, e + 4],
                                           [b, b], [2**64 - 4, 2**64], ['0', e], [b]])
        return st_pack(h, body), 'model.safetensors %s data_offsets %s' % (t, h[t]['data_offsets']), 'bad'
    if k == 'overlap':
        t2 = rng.choice([x for x in names if x != t and hdr[x]['shape'] == hdr[t]['shape']] or [t])
        h[t2]['data_offsets'] = h[t]['data_offsets']
        return st_pack(h, body), 'model.safetensors %s shares %s\'s bytes' % (t2, t), 'any' if t2 != t else 'any'
    if k == 'missing':
        del h[t]
        return st_pack(h, body), 'model.safetensors without %s' % t, 'bad'
    if k == 'extra':
        h['model.extra.weight'] = {'dtype': 'F32', 'shape': [1], 'data_offsets': [len(body), len(body) + 4]}
        return st_pack(h, body + b'\0' * 4), 'model.safetensors with an unexpected tensor', 'bad'
    if k == 'rename':
        h[t + '_x'] = h.pop(t)
        return st_pack(h, body), 'model.safetensors %s renamed' % t, 'bad'
    if k == 'meta':
        h['__metadata__'] = rng.choice([{'format': 5}, [], 'x', {'format': 'tf'}, {'a': {'b': 1}}])
        return st_pack(h, body), 'model.safetensors __metadata__ %s' % json.dumps(h['__metadata__']), 'any'
    if k == 'padding':
        raw = json.dumps(hdr).encode() + b' ' * 64
        return st_pack(None, body, raw_header=raw), 'model.safetensors header padded with spaces (valid)', 'good'
    if k == 'empty':
        return b'', 'model.safetensors empty', 'bad'
    # nan / inf / 1e38 values
    b, e = hdr[t]['data_offsets']
    val = rng.choice([float('nan'), float('inf'), -float('inf'), 1e38, -3.4e38])
    count = (e - b) // 4
    bb = bytearray(body)
    which = range(count) if rng.random() < 0.5 else [rng.randrange(count)]
    for j in which:
        bb[b + 4 * j:b + 4 * j + 4] = struct.pack('<f', val)
    return st_pack(hdr, bytes(bb)), 'model.safetensors %s %s %r' % (t, 'all' if len(which) > 1 else 'one value', val), 'any'


def model_cmd(cmd, model, d, j, which):
    if cmd == 'tokenize':
        return [BIN, 'tokenize', '--model', model], write(os.path.join(d, 'in', 'text.txt'), 'Hello world 123\nHéllo <|im_end|>\n')
    if cmd == 'decode':
        return [BIN, 'tokenize', '--decode', '--model', model], write(os.path.join(d, 'in', 'ids.txt'), '[72, 101, 256]\n')
    if cmd == 'chat-template':
        return [BIN, 'chat-template', '--model', model, '-g'], write(os.path.join(d, 'in', 'chat.json'), '[{"role":"system","content":"s"},{"role":"user","content":"hi"},{"role":"assistant","content":"yo"}]\n')
    if cmd == 'logits':
        os.makedirs(os.path.join(d, 'logits'), exist_ok=True)
        return [BIN, 'logits', '--model', model, '--out', os.path.join(d, 'logits', 'l%04d.safetensors' % j)], write(os.path.join(d, 'in', 'ids.txt'), '[72, 101, 256]\n')
    out = os.path.join(d, 'out', 'r%04d.jsonl' % j)
    ov = [f'tutor.model={model if which == "tutor" else TUTOR}', f'student.model={model if which == "student" else STUDENT}', 'cluster.torch_threads=1']
    return [BIN, 'rollout', '--config', 'config/tiny.toml', '--limit', '1', '--samples', '2', '--out', out] + ov, None


READS = {'tokenize': {'tokenizer.json'}, 'decode': {'tokenizer.json'},
         'chat-template': {'tokenizer_config.json'},  # renders text by family; tokenizer.json is not needed
         'logits': {'config.json', 'model.safetensors'},
         'rollout': {'tokenizer.json', 'tokenizer_config.json', 'config.json', 'model.safetensors'}}


def group4(rng):
    cases = []
    d = os.path.join(WORK, 'g4')
    bases = {'tutor': TUTOR, 'student': STUDENT}
    plan = (['config.json'] * 70 + ['tokenizer.json'] * 80 + ['tokenizer_config.json'] * 35 +
            ['model.safetensors'] * 85)
    for j, fname in enumerate(plan):
        which = rng.choice(['tutor', 'student'])
        src = bases[which]
        model = os.path.join(d, 'm%04d-%s' % (j, which))
        if os.path.exists(model):
            shutil.rmtree(model)
        shutil.copytree(src, model)
        fpath = os.path.join(model, fname)
        if fname == 'config.json':
            cfg = json.load(open(fpath))
            data, desc, exp, field = corrupt_config(rng, cfg)
            cmd = rng.choice(['logits', 'logits', 'rollout', 'chat-template'])
            names_all = [fname]
        elif fname == 'tokenizer.json':
            data, desc, exp = corrupt_tokenizer(rng, json.load(open(fpath)), 320)
            cmd = rng.choice(['tokenize', 'tokenize', 'decode', 'chat-template', 'rollout'])
            names_all = [fname]
        elif fname == 'tokenizer_config.json':
            data, desc, exp = corrupt_tokcfg(rng, json.load(open(fpath)))
            cmd = rng.choice(['chat-template', 'chat-template', 'rollout'])
            names_all = [fname]
        else:
            data, desc, exp = corrupt_safetensors(rng, fpath)
            cmd = rng.choice(['logits', 'logits', 'rollout'])
            names_all = [fname]
        write(fpath, data)
        if exp == 'vocab':
            exp = 'bad' if cmd in ('rollout', 'logits') else 'any'
        if exp == 'eos':
            exp = 'bad' if cmd == 'rollout' else 'any'
        if fname not in READS[cmd] and exp != 'good':
            exp = 'any'
        if fname == 'model.safetensors' and re.search(r'without|renamed|unexpected', desc):
            names_all = []  # naming the folder and the tensor is enough
        if cmd == 'chat-template' and fname == 'config.json':
            exp = 'any'
        argv, stdin = model_cmd(cmd, model, d, j, which)
        chk = None
        if cmd == 'rollout':
            chk = records_check(argv[argv.index('--out') + 1], 2)
        cases.append(Case(4, '%s: %s (%s)' % (cmd, desc, which), argv, timeout=120 if cmd == 'rollout' else 60,
                          expect=exp, why=desc, names=[model], names_all=names_all, stdin_path=stdin,
                          kind='%s:%s' % (cmd, fname), check=chk))
    # files replaced by special things
    skinds = ['fifo', 'folder', 'missing', 'symlink-loop', 'dev-zero', 'proc-self-mem', 'dangling-link', 'dev-null']
    for j, kind in enumerate(skinds * 2):
        fname = ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'][(j + j // 8) % 4]
        model = os.path.join(d, 'sp%02d-model' % j)
        if os.path.exists(model):
            shutil.rmtree(model)
        shutil.copytree(TUTOR, model)
        fpath = os.path.join(model, fname)
        os.unlink(fpath)
        if kind == 'fifo':
            mkfifo(fpath)
        elif kind == 'folder':
            mkdir(fpath)
        elif kind == 'symlink-loop':
            os.symlink(fpath, fpath)
        elif kind == 'dangling-link':
            os.symlink(fpath + '.nowhere', fpath)
        elif kind != 'missing':
            os.symlink({'dev-zero': '/dev/zero', 'dev-null': '/dev/null', 'proc-self-mem': '/proc/self/mem'}[kind], fpath)
        cmd = {'config.json': 'logits', 'tokenizer.json': 'tokenize', 'tokenizer_config.json': 'chat-template',
               'model.safetensors': 'logits'}[fname]
        argv, stdin = model_cmd(cmd, model, d, 900 + j, 'tutor')
        exp = 'any' if (kind in ('missing', 'dangling-link') and fname == 'tokenizer_config.json') else 'bad'
        cases.append(Case(4, '%s: %s is %s' % (cmd, fname, kind), argv, timeout=60, expect=exp, why=kind,
                          names=[model], names_all=[fname], stdin_path=stdin, kind='%s:special' % cmd))
    # the model folder itself
    for j, (kind, target) in enumerate(special_paths(os.path.join(d, 'modeldir'), '')):
        for cmd in ('tokenize', 'logits'):
            argv, stdin = model_cmd(cmd, target, d, 950 + j, 'tutor')
            cases.append(Case(4, '%s: --model is %s' % (cmd, kind), argv, timeout=60, expect='bad', why=kind,
                              names=[target], stdin_path=stdin, kind='%s:model-special' % cmd))
    cases.append(Case(4, 'logits: --out in a missing folder', [BIN, 'logits', '--model', TUTOR, '--out', os.path.join(d, 'nofolder', 'x.safetensors')],
                      timeout=60, expect='bad', why='missing folder', names=['nofolder'], stdin_path=write(os.path.join(d, 'in', 'ids.txt'), '[72, 101, 256]\n'),
                      kind='logits:out'))
    # sharded weights with an index
    for j, idx in enumerate([{'weight_map': {'model.embed_tokens.weight': '../../../../etc/passwd'}},
                             {'weight_map': {'model.embed_tokens.weight': 'missing.safetensors'}},
                             {'weight_map': 5}, {}, {'weight_map': {'model.embed_tokens.weight': '/dev/zero'}}]):
        model = os.path.join(d, 'idx%02d' % j)
        if os.path.exists(model):
            shutil.rmtree(model)
        shutil.copytree(TUTOR, model)
        os.unlink(os.path.join(model, 'model.safetensors'))
        write(os.path.join(model, 'model.safetensors.index.json'), json.dumps(idx))
        argv, stdin = model_cmd('logits', model, d, 980 + j, 'tutor')
        cases.append(Case(4, 'logits: model.safetensors.index.json %s' % json.dumps(idx)[:60], argv, timeout=60,
                          expect='bad', why='bad index', names=[model], stdin_path=stdin, kind='logits:index'))
    return cases


# ----------------------------------------------------------------------------------------------
# group 5: grade

def nest(open_, mid, close, n):
    return open_ * n + mid + close * n


GRADE_PAYLOADS = [
    # name, fn(rng) -> str|bytes, expected verdict for answer '5' or None
    ('boxed 5', lambda r: 'so \\boxed{5}', 'correct'),
    ('braces x10', lambda r: '\\boxed{' + nest('{', '5', '}', 10) + '}', None),
    ('braces x1000', lambda r: '\\boxed{' + nest('{', '5', '}', 1000) + '}', None),
    ('braces x100000', lambda r: '\\boxed{' + nest('{', '5', '}', 100000) + '}', None),
    ('braces x1000000', lambda r: '\\boxed{' + nest('{', '5', '}', 1000000) + '}', None),
    ('sqrt x1000', lambda r: '\\boxed{' + nest('\\sqrt{', '25', '}', 1000) + '}', None),
    ('sqrt x100000', lambda r: '\\boxed{' + nest('\\sqrt{', '25', '}', 100000) + '}', None),
    ('frac x1000', lambda r: '\\boxed{' + nest('\\frac{1}{', '5', '}', 1000) + '}', None),
    ('frac x100000', lambda r: '\\boxed{' + nest('\\frac{1}{', '5', '}', 100000) + '}', None),
    ('dfrac nested both', lambda r: '\\boxed{' + nest('\\dfrac{', '1', '}{2}', 50000) + '}', None),
    ('parens x100000', lambda r: '\\boxed{' + nest('(', '5', ')', 100000) + '}', None),
    ('left right x50000', lambda r: '\\boxed{' + nest('\\left(', '5', '\\right)', 50000) + '}', None),
    ('power tower 9^9^9', lambda r: '\\boxed{9^{9^{9}}}', 'incorrect'),
    ('power tower 2^2^...x20', lambda r: '\\boxed{' + nest('2^{', '2', '}', 20) + '}', 'incorrect'),
    ('10^{1000000}', lambda r: '\\boxed{10^{1000000}}', 'incorrect'),
    ('10^{10^{10}}', lambda r: '\\boxed{10^{10^{10}}}', 'incorrect'),
    ('1e999999', lambda r: '\\boxed{1e999999}', 'incorrect'),
    ('0.1^{-99999}', lambda r: '\\boxed{0.1^{-99999}}', 'incorrect'),
    ('factorial', lambda r: '\\boxed{(10^{10})!}', 'incorrect'),
    ('1e6 digits', lambda r: '\\boxed{' + '9' * 10**6 + '}', 'incorrect'),
    ('1e6 digit decimal', lambda r: '\\boxed{0.' + '3' * 10**6 + '}', 'incorrect'),
    ('1e6 digits with commas', lambda r: '\\boxed{' + ','.join(['999'] * 333333) + '}', 'incorrect'),
    ('1e400', lambda r: '\\boxed{1e400}', 'incorrect'), ('-1e400', lambda r: '\\boxed{-1e400}', 'incorrect'),
    ('1e-400', lambda r: '\\boxed{1e-400}', 'incorrect'), ('nan', lambda r: '\\boxed{nan}', 'incorrect'),
    ('inf', lambda r: '\\boxed{inf}', 'incorrect'), ('\\infty', lambda r: '\\boxed{\\infty}', 'incorrect'),
    ('1/0', lambda r: '\\boxed{1/0}', 'incorrect'), ('frac10', lambda r: '\\boxed{\\frac{1}{0}}', 'incorrect'),
    ('frac00', lambda r: '\\boxed{\\frac{0}{0}}', 'incorrect'), ('sqrt -1', lambda r: '\\boxed{\\sqrt{-1}}', 'incorrect'),
    ('5.0', lambda r: '\\boxed{5.0}', 'correct'), ('10/2', lambda r: '\\boxed{\\frac{10}{2}}', 'correct'),
    ('unbalanced {', lambda r: '\\boxed{5', None), ('only {{{', lambda r: '\\boxed{{{', None),
    ('}}} first', lambda r: '}}}\\boxed{5}', None), ('bare boxed', lambda r: '\\boxed', None),
    ('boxed {', lambda r: '\\boxed{', None), ('dollars', lambda r: '$\\boxed{5}$$$', None),
    ('left(', lambda r: '\\boxed{\\left(}', None), ('frac{', lambda r: '\\boxed{\\frac{}', None),
    ('frac{1}', lambda r: '\\boxed{\\frac{1}}', None), ('sqrt[', lambda r: '\\boxed{\\sqrt[}', None),
    ('sqrt[3]{', lambda r: '\\boxed{\\sqrt[3]{}', None), ('backslash end', lambda r: '\\boxed{5\\', None),
    ('many backslashes', lambda r: '\\boxed{' + '\\' * 100000 + '}', None),
    ('binary 100', lambda r: bytes(r.randrange(256) for _ in range(100)), None),
    ('binary 100k', lambda r: bytes(r.randrange(256) for _ in range(100000)), None),
    ('binary with box', lambda r: bytes(r.randrange(256) for _ in range(1000)) + b'\\boxed{5}' + bytes(r.randrange(256) for _ in range(1000)), None),
    ('invalid utf8 in box', lambda r: b'\\boxed{5\xff\xfe}', None), ('nul in box', lambda r: b'\\boxed{5\x00}', None),
    ('nul before box', lambda r: b'\x00\\boxed{5}', None),
    ('50 MB of a', lambda r: b'a' * (50 << 20), 'incorrect'),
    ('10 MB of boxes', lambda r: b'\\boxed{1}' * ((10 << 20) // 9), None),
    ('100k boxes', lambda r: '\\boxed{1}' * 100000 + '\\boxed{5}', None),
    ('1M lines', lambda r: 'line\n' * 10**6 + '\\boxed{5}', None),
    ('fullwidth 5', lambda r: '\\boxed{５}', None), ('arabic 5', lambda r: '\\boxed{٥}', None),
    ('zero width', lambda r: '\\boxed{5\u200b}', None), ('rtl', lambda r: '\\boxed{\u202e5}', None),
    ('1,000,000', lambda r: '\\boxed{1,000,000}', None), ('thin space', lambda r: '\\boxed{1\\,000}', None),
    ('percent', lambda r: '\\boxed{5\\%}', None), ('dollar', lambda r: '\\boxed{\\$5}', 'correct'),
    ('units', lambda r: '\\boxed{5 \\text{ m}^2}', None), ('x = 5', lambda r: '\\boxed{x = 5}', None),
    ('text nest', lambda r: '\\boxed{' + nest('\\text{', '5', '}', 50000) + '}', None),
    ('mixed nest', lambda r: '\\boxed{' + ''.join(r.choice(['{', '\\frac{', '\\sqrt{', '(', '[', '\\left(']) for _ in range(100000)) + '5', None),
    ('deep matrix', lambda r: '\\boxed{\\begin{pmatrix}' + '1&' * 100000 + '\\end{pmatrix}}', None),
    ('exponent 1e9', lambda r: '\\boxed{5^{1000000000}}', 'incorrect'),
    ('decimal exponent', lambda r: '\\boxed{5e+0000000000000000000001}', None),
    ('huge exponent digits', lambda r: '\\boxed{1e' + '9' * 1000 + '}', 'incorrect'),
    ('negative zero', lambda r: '\\boxed{-0}', 'incorrect'), ('empty', lambda r: '', 'incorrect'),
    ('empty box', lambda r: '\\boxed{}', 'incorrect'), ('fbox', lambda r: '\\fbox{5}', None),
    ('mixed fraction', lambda r: '\\boxed{4\\frac{2}{2}}', None), ('repeating', lambda r: '\\boxed{4.\\overline{9}}', None),
]
GRADE_ANSWERS = ['5', '5', '5', '0.75', '-0', '1e400', 'nan', '', '\\', '{', '}', '\\frac{1}{0}', '9' * 100000,
                 'x^{x^{x}}', '日本', '\u202e5', '\\boxed{5}', '5 m', '1,000', '10^{1000000}',
                 nest('{', '5', '}', 10000), nest('\\sqrt{', '5', '}', 10000), '\udcff5', '9^{9^{9}}']


def verdict_check(expected):
    def check(r):
        if r['rc'] != 0:
            return []
        first = r['stdout'].strip().split('\n')[0] if r['stdout'].strip() else ''
        p = []
        if not re.match(r'^(correct|incorrect)\b', first):
            p.append('exit 0 without a verdict: %r' % first[:60])
        elif expected and not first.startswith(expected):
            p.append('review: verdict %r, expected %s' % (first[:60], expected))
        if r['duration'] > 5:
            p.append('review: slow (%.1f s)' % r['duration'])
        return p
    return check


def group5(rng):
    cases = []
    d = os.path.join(WORK, 'g5')
    made = {}
    for j, (name, fn, exp) in enumerate(GRADE_PAYLOADS):
        data = fn(random.Random(SEED + j))
        made[name] = write(os.path.join(d, 's%03d.txt' % j), data)
    names = [p[0] for p in GRADE_PAYLOADS]
    expected = {p[0]: p[2] for p in GRADE_PAYLOADS}
    pairs = [(n, '5', 'math') for n in names] + [(n, '5', 'exact') for n in names[:20]]
    while len(pairs) < 300:
        pairs.append((rng.choice(names), rng.choice(GRADE_ANSWERS), rng.choice(['math', 'math', 'exact'])))
    for name, ans, mode in pairs:
        exp = expected[name] if ans == '5' and mode == 'math' else None
        argv = [BIN, 'grade', '--answer', ans] + (['--mode', mode] if mode != 'math' else [])
        cases.append(Case(5, 'grade %s vs answer %r (%s)' % (name, ans[:16], mode), argv, timeout=20,
                          stdin_path=made[name], names=['stdin', 'answer', 'solution', '--answer'],
                          kind='grade:' + name, check=verdict_check(exp)))
    # stdin that is not a file
    for kind, p in [('fifo', mkfifo(os.path.join(d, 'stdin.fifo')))]:
        pass
    return cases


# ----------------------------------------------------------------------------------------------
# group 6: tokenize --decode (and a few encodes)

def token_limits(model):
    tok = json.load(open(os.path.join(model, 'tokenizer.json')))
    ids = list(tok['model']['vocab'].values()) + [a['id'] for a in tok['added_tokens']]
    vocab = json.load(open(os.path.join(model, 'config.json')))['vocab_size']
    return max(ids), vocab


def ids_expect(line, top, vocab):
    try:
        v = json.loads(line)
    except Exception:
        return 'bad'
    if not isinstance(v, list):
        return 'bad'
    exp = 'good'
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            return 'bad'
        if isinstance(x, float):
            if not x.is_integer():
                return 'bad'
            exp = 'any'
        if x < 0 or x >= vocab:
            return 'bad'
        if x > top:
            exp = 'any'
    return exp


def group6(rng):
    cases = []
    d = os.path.join(WORK, 'g6')
    fixed = ['[-1]', '[4294967400]', '[1.5]', '["a"]', '[[1]]', '[true]', '[false]', '[null]', '[]',
             '[320]', '[319]', '[258]', '[259]', '[261]', '[262]', '[1e400]', '[9223372036854775807]',
             '[9223372036854775808]', '[-9223372036854775809]', '[18446744073709551616]', '[1e2]', '[2.0]',
             '[-0]', '[-0.0]', '[0.5]', '[1e-400]', '{}', '{"ids": [1]}', '[1][2]', '[1,2,]', '[1 2]', 'abc',
             '', '   ', '  [72, 105]  ', '[72,105]', '"[1]"', '42', 'null', '[' * 100000 + ']' * 100000,
             '[' * 100000, '[72,' + '[' * 50000, '[2147483648]', '[4294967295]', '[4294967296]', '[-2147483649]',
             '[256, 257, 258]', '[NaN]', '[Infinity]', '[0x10]', '[1,2,3]\x00', '\xff[1]', '[72]\r',
             '[' + ','.join(['72'] * 10**6) + ']', '[' + ','.join(['72'] * 10**6) + ',-1]',
             '[' + ','.join(str(i % 256) for i in range(200000)) + ']']
    lines = list(fixed)
    while len(lines) < 78:
        k = rng.random()
        if k < 0.3:
            lines.append(json.dumps([rng.randrange(-5, 400) for _ in range(rng.randrange(1, 8))]))
        elif k < 0.5:
            lines.append(json.dumps([rng.choice([1, 2**31, 2**32 + 72, 2**63 - 1, -2**63, 72.0, 72.5, 'x', None, [72]])
                                     for _ in range(rng.randrange(1, 4))]))
        elif k < 0.7:
            lines.append('\n'.join(json.dumps([rng.randrange(0, 256)]) for _ in range(rng.randrange(2, 5))) + '\n' + rng.choice(['[-1]', '[1.5]', 'x', '[999]']))
        else:
            lines.append('\n'.join(json.dumps([rng.randrange(0, 256) for _ in range(5)]) for _ in range(rng.randrange(2, 6))))
    for j, text in enumerate(lines):
        which = [TUTOR, STUDENT, os.path.join(TUTOR, 'tokenizer.json')][j % 3]
        top, vocab = token_limits(TUTOR if which != STUDENT else STUDENT)
        nonempty = [ln for ln in text.split('\n') if ln.strip()]
        exps = [ids_expect(ln, top, vocab) for ln in nonempty] or ['any']
        exp = 'bad' if 'bad' in exps else ('any' if 'any' in exps else 'good')
        if '\x00' in text or '\xff' in text or '\r' in text:
            exp = 'any'
        path = write(os.path.join(d, 'ids%03d.txt' % j), text.encode('utf-8', 'surrogateescape') + b'\n')
        n_lines = len(nonempty)

        def chk(r, n_lines=n_lines, exp=exp):
            if r['rc'] != 0 or exp != 'good':
                return []
            got = r['stdout'].count('\n')
            return [] if got >= n_lines else ['decoded %d of %d lines' % (got, n_lines)]
        cases.append(Case(6, 'decode %r' % text[:40], [BIN, 'tokenize', '--decode', '--model', which] +
                          (['--skip-special-tokens'] if j % 5 == 4 else []), timeout=20, expect=exp,
                          why='ids outside the vocabulary or not ids', stdin_path=path, names=['stdin', 'line'],
                          kind='decode', check=chk))
    enc = [('invalid utf8', b'abc\xff\xfedef\n', [], 'any'), ('nul', b'a\x00b\n', [], 'any'),
           ('10 MB line', b'word ' * (2 << 20) + b'\n', [], 'good'), ('special strings', b'<|im_end|><|endoftext|>\n', [], 'good'),
           ('json-lines not json', b'not json\n', ['--json-lines'], 'bad'), ('json-lines number', b'42\n', ['--json-lines'], 'bad'),
           ('json-lines lone surrogate', b'"\\ud800"\n', ['--json-lines'], 'bad'), ('json-lines nul', b'"a\\u0000b"\n', ['--json-lines'], 'any'),
           ('json-lines deep', b'[' * 100000 + b'\n', ['--json-lines'], 'bad'), ('json-lines ok', b'"hi\\nthere"\n', ['--json-lines'], 'good'),
           ('add special', b'hello\n', ['--add-special-tokens'], 'good'), ('empty input', b'', [], 'any'),
           ('only newlines', b'\n\n\n', [], 'any'), ('CRLF', b'hello\r\nworld\r\n', [], 'good'),
           ('overlong utf8', b'\xc0\xaf\n', [], 'any'), ('surrogate utf8', b'\xed\xa0\x80\n', [], 'any'),
           ('many special-like', b'<|' * 100000 + b'\n', [], 'good'), ('100k lines', b'ab\n' * 100000, [], 'good'),
           ('json-lines array', b'["a"]\n', ['--json-lines'], 'bad'), ('json-lines huge string', b'"' + b'x' * (5 << 20) + b'"\n', ['--json-lines'], 'good'),
           ('regex killer', b'a' * 200000 + b'!\n', [], 'good'), ('spaces', b' ' * 500000 + b'\n', [], 'good')]
    for j, (name, data, extra, exp) in enumerate(enc):
        path = write(os.path.join(d, 'enc%02d.txt' % j), data)
        cases.append(Case(6, 'encode %s' % name, [BIN, 'tokenize', '--model', TUTOR if j % 2 else STUDENT] + extra,
                          timeout=20, expect=exp, why=name, stdin_path=path, names=['stdin', 'line'], kind='encode'))
    # the other commands that read JSON from stdin: chat-template and logits
    deep = '[' * 100000 + ']' * 100000
    chats = [('deep list', deep, 'bad'), ('deep content', '[{"role":"user","content":' + deep + '}]', 'bad'),
             ('deep unclosed', '[' * 200000, 'bad'), ('object', '{"role":"user","content":"hi"}', 'bad'),
             ('empty list', '[]', 'any'), ('role tool', '[{"role":"tool","content":"x"}]', 'bad'),
             ('content number', '[{"role":"user","content":5}]', 'bad'), ('no content', '[{"role":"user"}]', 'bad'),
             ('not json', 'not json', 'bad'), ('lone surrogate', '[{"role":"user","content":"\\ud800"}]', 'bad'),
             ('invalid utf8', '[{"role":"user","content":"\udcff"}]', 'bad'),
             ('10 MB content', '[{"role":"user","content":"' + 'x' * (10 << 20) + '"}]', 'good'),
             ('100k messages', json.dumps([{'role': 'user', 'content': 'hi'}] * 100000), 'good'),
             ('two lines', '[{"role":"user","content":"a"}]\n[{"role":"user","content":"b"}]', 'any'),
             ('special tokens in content', '[{"role":"user","content":"<|im_end|><|im_start|>system"}]', 'any')]
    for j, (name, text, exp) in enumerate(chats):
        path = write(os.path.join(d, 'chat%02d.json' % j), text.encode('utf-8', 'surrogateescape') + b'\n')
        for k, model in enumerate([TUTOR, STUDENT]):
            argv = [BIN, 'chat-template', '--model', model, '-g'] + (['--ids'] if (j + k) % 3 == 0 else [])
            cases.append(Case(6, 'chat-template stdin %s' % name, argv, timeout=30, expect=exp, why=name, stdin_path=path,
                              names=['stdin', 'line', 'message', 'messages'], kind='chat-template-stdin'))
    ids = [('deep list', deep, 'bad'), ('[-1]', '[-1]', 'bad'), ('[320]', '[320]', 'bad'), ('[1e400]', '[1e400]', 'bad'),
           ('[]', '[]', 'any'), ('[1.5]', '[1.5]', 'bad'), ('[true]', '[true]', 'bad'), ('not json', 'xyz', 'bad'),
           ('5000 ids', json.dumps([72] * 5000), 'good'), ('40000 ids (past max_position_embeddings of the tutor? 32768)', json.dumps([72] * 40000), 'any'),
           ('[4294967368]', '[4294967368]', 'bad'), ('nested', '[[72]]', 'bad')]
    for j, (name, text, exp) in enumerate(ids):
        path = write(os.path.join(d, 'logits%02d.txt' % j), text + '\n')
        out = os.path.join(d, 'logits', 'l%02d.safetensors' % j)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        cases.append(Case(6, 'logits stdin %s' % name, [BIN, 'logits', '--model', TUTOR, '--out', out], timeout=60,
                          expect=exp, why=name, stdin_path=path, names=['stdin', 'line'], kind='logits-stdin'))
    return cases


# ----------------------------------------------------------------------------------------------
# group 7: SFT chat JSONL

def chat_row(i, field='conversation'):
    w = 'w%03dq' % i
    return json.dumps({field: [{'role': 'user', 'content': 'Say %s.' % w},
                               {'role': 'assistant', 'content': 'Sure: %s. Done.' % w}]})


SFT_MUTATIONS = [
    ('not json', b'{"conversation": [', 'bad'), ('array row', b'[]', 'bad'), ('null row', b'null', 'bad'),
    ('no field', b'{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('field not list', b'{"conversation": "hi"}', 'bad'), ('field object', b'{"conversation": {"role": "user"}}', 'bad'),
    ('empty list', b'{"conversation": []}', 'bad'),
    ('message not object', b'{"conversation": ["hi", "there"]}', 'bad'),
    ('no role', b'{"conversation": [{"content": "a"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('no content', b'{"conversation": [{"role": "user"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('role tool', b'{"conversation": [{"role": "tool", "content": "a"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('role number', b'{"conversation": [{"role": 1, "content": "a"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('role Assistant', b'{"conversation": [{"role": "user", "content": "a"}, {"role": "Assistant", "content": "b"}]}', 'bad'),
    ('content number', b'{"conversation": [{"role": "user", "content": 5}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('content null', b'{"conversation": [{"role": "user", "content": null}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('content list', b'{"conversation": [{"role": "user", "content": [{"type": "text", "text": "a"}]}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('no assistant', b'{"conversation": [{"role": "user", "content": "a"}]}', 'bad'),
    ('assistant only', b'{"conversation": [{"role": "assistant", "content": "b"}]}', 'any'),
    ('system only', b'{"conversation": [{"role": "system", "content": "s"}]}', 'bad'),
    ('huge content', lambda: json.dumps({'conversation': [{'role': 'user', 'content': 'x' * 20000}, {'role': 'assistant', 'content': 'b'}]}).encode(), 'bad'),
    ('escaped nul', b'{"conversation": [{"role": "user", "content": "a\\u0000b"}, {"role": "assistant", "content": "b"}]}', 'any'),
    ('invalid utf8', b'{"conversation": [{"role": "user", "content": "a\xff"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('lone surrogate', b'{"conversation": [{"role": "user", "content": "\\udc00"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('consecutive users', b'{"conversation": [{"role": "user", "content": "a"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}', 'any'),
    ('ends with user', b'{"conversation": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}', 'any'),
    ('extra fields', b'{"conversation": [{"role": "user", "content": "a", "name": "x"}, {"role": "assistant", "content": "b"}], "id": 5}', 'good'),
    ('empty content', b'{"conversation": [{"role": "user", "content": ""}, {"role": "assistant", "content": ""}]}', 'any'),
    ('special tokens in content', b'{"conversation": [{"role": "user", "content": "<|im_end|><|im_start|>system"}, {"role": "assistant", "content": "<|endoftext|>"}]}', 'any'),
    ('deep nesting', lambda: b'{"conversation": ' + b'[' * 100000 + b']' * 100000 + b'}', 'bad'),
    ('deep extra', lambda: b'{"conversation": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "x": ' + b'[' * 100000 + b']' * 100000 + b'}', 'any'),
    ('trailing garbage', b'{"conversation": []} x', 'bad'), ('raw control byte', b'{"conversation": [{"role": "user", "content": "a\x01"}, {"role": "assistant", "content": "b"}]}', 'bad'),
    ('system in middle', b'{"conversation": [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}, {"role": "assistant", "content": "b"}]}', 'any'),
    ('1000 turns', lambda: json.dumps({'conversation': [{'role': ['user', 'assistant'][k % 2], 'content': 'x'} for k in range(1000)]}).encode(), 'any'),
]


def sft_argv(train, run_dir, extra=()):
    return [BIN, 'sft', '--config', 'config/sft.toml', 'tutor.model=' + TUTOR, 'sft.train=' + train,
            'sft.max_steps=1', 'logging.run_dir=' + run_dir, 'cluster.torch_threads=1'] + list(extra)


def sft_check(run_dir):
    def check(r):
        if r['rc'] != 0:
            return []
        recs, prob = jsonl_lines(os.path.join(run_dir, 'sft_metrics.jsonl'))
        p = [prob] if prob else []
        if not any(rec.get('step') == 1 and 'loss' in rec for rec in recs):
            p.append('exit 0 but sft_metrics.jsonl has no step 1')
        if not os.path.isdir(os.path.join(run_dir, 'checkpoints', 'step-000001')):
            p.append('exit 0 but no checkpoint step-000001')
        return p
    return check


def group7(rng):
    cases = []
    d = os.path.join(WORK, 'g7')
    for i in range(72):
        name, row, exp = rng.choice(SFT_MUTATIONS)
        row = row() if callable(row) else row
        rows = [chat_row(i * 20 + k).encode() for k in range(16)]
        rows.insert(rng.randrange(17), row)
        sep = b'\r\n' if rng.random() < 0.15 else b'\n'
        if rng.random() < 0.15:
            rows.insert(rng.randrange(len(rows)), b'')
        path = write(os.path.join(d, 'c%03d.jsonl' % i), sep.join(rows) + sep)
        run_dir = os.path.join(d, 'run', 'r%03d' % i)
        cases.append(Case(7, 'sft row ' + name, sft_argv(path, run_dir), timeout=120, expect=exp, why=name,
                          names=[path], kind='sft:' + name, check=sft_check(run_dir)))
    good16 = ('\n'.join(chat_row(k) for k in range(16)) + '\n').encode()
    whole = [('empty file', b'', 'bad'), ('blank lines', b'\n\n\n', 'bad'), ('one row', chat_row(1).encode() + b'\n', 'any'),
             ('two rows', (chat_row(1) + '\n' + chat_row(2) + '\n').encode(), 'any'),
             ('5000 rows', ('\n'.join(chat_row(k) for k in range(5000)) + '\n').encode(), 'good'),
             ('no trailing newline', good16[:-1], 'good'), ('bom', b'\xef\xbb\xbf' + good16, 'any'),
             ('messages field', ('\n'.join(chat_row(k, 'messages') for k in range(16)) + '\n').encode(), 'bad'),
             ('binary', bytes(random.Random(5).randrange(256) for _ in range(5000)), 'bad')]
    for j, (name, data, exp) in enumerate(whole):
        path = write(os.path.join(d, 'w%02d.jsonl' % j), data)
        run_dir = os.path.join(d, 'run', 'w%02d' % j)
        cases.append(Case(7, 'sft file ' + name, sft_argv(path, run_dir), timeout=120, expect=exp, why=name,
                          names=[path], kind='sft:file', check=sft_check(run_dir)))
    for j, (kind, p) in enumerate(special_paths(os.path.join(d, 'special'), '.jsonl')):
        run_dir = os.path.join(d, 'run', 's%02d' % j)
        cases.append(Case(7, 'sft file is ' + kind, sft_argv(p, run_dir), timeout=120, expect='bad', why=kind,
                          names=[p], kind='sft:special'))
    good = write(os.path.join(d, 'good.jsonl'), good16)
    badval = write(os.path.join(d, 'badval.jsonl'), b'{"conversation": 5}\n')
    extra = [('sft.val is bad', ['sft.val=' + badval], 'bad', badval),
             ('sft.val is a fifo', ['sft.val=' + os.path.join(d, 'special-fifo.jsonl')], 'bad', 'special-fifo'),
             ('sft.val missing', ['sft.val=' + os.path.join(d, 'nope.jsonl')], 'bad', 'nope.jsonl'),
             ('sft.val_fraction 1', ['sft.val_fraction=1.0'], 'any', 'val_fraction'),
             ('sft.val_fraction 0', ['sft.val_fraction=0.0'], 'any', 'val_fraction'),
             ('sft.max_length 1', ['sft.max_length=1'], 'bad', 'max_length'),
             ('sft.messages_field empty', ['sft.messages_field='], 'bad', 'messages_field'),
             ('sft.loss_on bogus', ['sft.loss_on=bogus'], 'bad', 'loss_on'),
             ('run_dir is a file', ['logging.run_dir=' + good], 'bad', good),
             ('run_dir is /dev/null', ['logging.run_dir=/dev/null'], 'bad', '/dev/null'),
             ('tutor.model missing', ['tutor.model=' + os.path.join(d, 'nomodel')], 'bad', 'nomodel'),
             ('pack true', ['sft.pack=true'], 'good', '')]
    for j, (name, ov, exp, nm) in enumerate(extra):
        run_dir = os.path.join(d, 'run', 'x%02d' % j)
        argv = sft_argv(good, run_dir)
        argv = [a for a in argv if not (a.startswith('logging.run_dir=') and any(o.startswith('logging.run_dir=') for o in ov))]
        argv = [a for a in argv if not (a.startswith('tutor.model=') and any(o.startswith('tutor.model=') for o in ov))]
        cases.append(Case(7, 'sft ' + name, argv + ov, timeout=120, expect=exp, why=name, names=[nm] if nm else [],
                          kind='sft:option', check=sft_check(run_dir) if 'run_dir' not in name else None))
    return cases


# ----------------------------------------------------------------------------------------------
# group 8: faults at random moments

SIGNAME = {signal.SIGINT: 'SIGINT', signal.SIGTERM: 'SIGTERM', signal.SIGKILL: 'SIGKILL'}


def wait_proc(p, timeout):
    try:
        p.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        pg_kill(p.pid)
        p.wait()
        return True


def run_logged(argv, log_prefix, timeout, on_start=None, env=None):
    """Runs argv with output to files; on_start(p) is called once it started. -> result dict."""
    fo, fe = open(log_prefix + '.out', 'wb'), open(log_prefix + '.err', 'wb')
    t0 = time.monotonic()
    p = spawn(argv, stdout=fo, stderr=fe, env=env)
    sent = on_start(p) if on_start else []
    hang = wait_proc(p, max(1, timeout - (time.monotonic() - t0)))
    dur = time.monotonic() - t0
    leftover = reap_group(p) if not hang else False
    fo.close()
    fe.close()
    return {'rc': p.returncode, 'stdout': open(log_prefix + '.out', 'rb').read().decode('utf-8', 'replace'),
            'stderr': open(log_prefix + '.err', 'rb').read().decode('utf-8', 'replace'),
            'duration': round(dur, 2), 'hang': hang, 'leftover': leftover, 'sent': sent}


def signaller(delay, sigs):
    def on_start(p):
        end = time.monotonic() + delay
        while time.monotonic() < end and p.poll() is None:
            time.sleep(0.05)
        sent = []
        for s in sigs:
            if p.poll() is not None:
                break
            try:
                os.kill(p.pid, s)
                sent.append(int(s))
            except ProcessLookupError:
                break
            time.sleep(0.3)
        return sent
    return on_start


def expected_rc(sent):
    if not sent:
        return {0}
    last = sent[-1]
    if last == signal.SIGKILL:
        return {-signal.SIGKILL}
    return {128 + sent[0], 128 + last, 0}


def fault_runner(case):
    f = case.fault
    os.makedirs(f['dir'], exist_ok=True)
    argv = case.argv
    r1 = run_logged(argv, os.path.join(f['dir'], 'first'), 120, signaller(f['delay'], f['sigs']))
    problems, flags = [], []
    if r1['hang']:
        return r1, 'hang', 'no exit within 120 s after %s' % '+'.join(SIGNAME[s] for s in r1['sent']), flags
    rc = r1['rc']
    if rc is not None and rc < 0 and -rc not in r1['sent']:
        return r1, 'crash', 'killed by %s' % signal.Signals(-rc).name, flags
    if CRASH_RE.search(r1['stderr']):
        return r1, 'crash', 'crash text after signal: ' + CRASH_RE.search(r1['stderr']).group(0), flags
    if r1['leftover']:
        return r1, 'hang', 'processes left running after the signal', flags
    exp = expected_rc(r1['sent'])
    if rc not in exp:
        if rc is not None and rc < 0:
            flags.append('review: died of raw %s instead of exiting %d' % (SIGNAME.get(-rc, -rc), 128 - rc))
        else:
            flags.append('review: exit %s after %s' % (rc, '+'.join(SIGNAME[s] for s in r1['sent']) or 'no signal'))
    for fn in f['lines']:
        _, prob = jsonl_lines(fn)
        if prob:
            problems.append('after %s: %s' % ('+'.join(SIGNAME[s] for s in r1['sent']), prob))
    # rerun to completion
    r2 = None
    if not r1['sent']:
        flags.append('note: finished before the signal')
    if rc != 0:
        argv2 = f['rerun'](argv)
        r2 = run_logged(argv2, os.path.join(f['dir'], 'second'), 120)
        r1['stderr'] += '\n--- rerun: %s\n' % shlex.join(argv2) + r2['stderr']
        r1['duration'] = round(r1['duration'] + r2['duration'], 2)
        if r2['hang']:
            return r1, 'hang', 'rerun did not end within 120 s', flags
        if r2['rc'] is not None and r2['rc'] < 0:
            return r1, 'crash', 'rerun killed by %s' % signal.Signals(-r2['rc']).name, flags
        if CRASH_RE.search(r2['stderr']):
            return r1, 'crash', 'rerun crash text: ' + CRASH_RE.search(r2['stderr']).group(0), flags
        if r2['leftover']:
            return r1, 'hang', 'rerun left processes running', flags
        if r2['rc'] != 0:
            ok, why = clarity(r2['stderr'])
            if not ok:
                return r1, 'unclear', 'rerun (%s) failed: exit %s, %s' % (argv2[-1] if argv2[-1].startswith('--') else 'same command', r2['rc'], why), flags
            flags.append('review: rerun failed with exit %s: %s' % (r2['rc'], err_block(r2['stderr'])[:1]))
            if problems:
                return r1, 'silent loss', '; '.join(problems), flags
            return r1, 'ok', '', flags
    problems += f['final']()
    if problems:
        return r1, 'silent loss', '; '.join(problems)[:400], flags
    return r1, 'ok', '', flags


def train_final(run_dir, steps, per_step):
    def fn():
        p = []
        mets, prob = jsonl_lines(os.path.join(run_dir, 'metrics.jsonl'))
        if prob:
            p.append(prob)
        got = sorted(m.get('step') for m in mets)
        if got != list(range(steps)):
            p.append('metrics.jsonl steps %s (expected 0..%d once each)' % (got, steps - 1))
        dia, prob = jsonl_lines(os.path.join(run_dir, 'dialogs.jsonl'))
        if prob:
            p.append(prob)
        keys = [(x.get('step'), x.get('id')) for x in dia]
        if len(keys) != steps * per_step or len(set(keys)) != len(keys):
            p.append('dialogs.jsonl has %d records, %d distinct (expected %d)' % (len(keys), len(set(keys)), steps * per_step))
        return p
    return fn


def rollout_final(out, n):
    def fn():
        recs, prob = jsonl_lines(out)
        p = [prob] if prob else []
        ids = [x.get('id') for x in recs]
        if len(ids) != n or len(set(ids)) != n:
            p.append('%s has %d records, %d distinct ids (expected %d)' % (os.path.basename(out), len(ids), len(set(ids)), n))
        return p
    return fn


def sft_final(run_dir, steps):
    def fn():
        recs, prob = jsonl_lines(os.path.join(run_dir, 'sft_metrics.jsonl'))
        p = [prob] if prob else []
        got = sorted(x['step'] for x in recs if 'loss' in x and 'val_loss' not in x)
        if got != list(range(1, steps + 1)):
            p.append('sft_metrics.jsonl step lines %s (expected 1..%d once each)' % (got, steps))
        return p
    return fn


def has_checkpoint(run_dir):
    d = os.path.join(run_dir, 'checkpoints')
    return os.path.isdir(d) and any(re.fullmatch(r'step-\d+', x) for x in os.listdir(d))


def group8(rng):
    cases = []
    d = os.path.join(WORK, 'g8')
    chat = write(os.path.join(d, 'chat.jsonl'), '\n'.join(chat_row(k) for k in range(64)) + '\n')
    sig_choices = [[signal.SIGINT]] * 6 + [[signal.SIGTERM]] * 6 + [[signal.SIGKILL]] * 5 + \
                  [[signal.SIGINT, signal.SIGINT]] * 2 + [[signal.SIGTERM, signal.SIGINT]]
    plan = ['train'] * 45 + ['rollout'] * 33 + ['sft'] * 22
    for j, what in enumerate(plan):
        sigs = rng.choice(sig_choices)
        cdir = os.path.join(d, 'c%03d-%s' % (j, what))
        if os.path.exists(cdir):
            shutil.rmtree(cdir)
        if what == 'train':
            delay = round(rng.uniform(0.2, 7), 2)
            run_dir = os.path.join(cdir, 'run')
            argv = [BIN, 'train', '--config', 'config/tiny.toml', 'logging.run_dir=' + run_dir] + RUN_OV + TINY_TRAIN + ['checkpoint.every_steps=2']

            def rerun(a, run_dir=run_dir):
                return a + ['--resume'] if has_checkpoint(run_dir) else a + ['--force']
            fault = {'dir': cdir, 'delay': delay, 'sigs': sigs, 'rerun': rerun,
                     'lines': [os.path.join(run_dir, 'metrics.jsonl'), os.path.join(run_dir, 'dialogs.jsonl')],
                     'final': train_final(run_dir, 4, 4)}
        elif what == 'rollout':
            delay = round(rng.uniform(0.2, 4), 2)
            out = os.path.join(cdir, 'out.jsonl')
            argv = [BIN, 'rollout', '--config', 'config/tiny.toml', '--limit', '4', '--samples', '4', '--out', out] + RUN_OV

            def rerun(a, out=out):
                return a + ['--force'] if os.path.exists(out) else a
            fault = {'dir': cdir, 'delay': delay, 'sigs': sigs, 'rerun': rerun, 'lines': [out],
                     'final': rollout_final(out, 16)}
        else:
            delay = round(rng.uniform(0.2, 3.5), 2)
            run_dir = os.path.join(cdir, 'run')
            argv = [BIN, 'sft', '--config', 'config/sft.toml', 'tutor.model=' + TUTOR, 'sft.train=' + chat,
                    'sft.max_steps=8', 'sft.micro_batch_size=2', 'sft.gradient_accumulation=2',
                    'checkpoint.every_steps=2', 'sft.val_every_steps=3', 'logging.run_dir=' + run_dir,
                    'cluster.torch_threads=1']

            def rerun(a, run_dir=run_dir):
                return a + ['--resume'] if has_checkpoint(run_dir) else a + ['--force']
            fault = {'dir': cdir, 'delay': delay, 'sigs': sigs, 'rerun': rerun,
                     'lines': [os.path.join(run_dir, 'sft_metrics.jsonl')], 'final': sft_final(run_dir, 8)}
        c = Case(8, '%s, %s after %.2f s, then rerun' % (what, '+'.join(SIGNAME[s] for s in sigs), delay), argv,
                 timeout=240, kind='fault:%s:%s' % (what, '+'.join(SIGNAME[s] for s in sigs)), runner=fault_runner)
        c.fault = fault
        cases.append(c)
    return cases


# ----------------------------------------------------------------------------------------------
# group 9: the inspector's HTTP server

class Inspector:
    def __init__(self):
        self.p = None
        self.port = None
        self.token = None
        self.log = None

    def start(self, name, token=None, extra=()):
        run_dir = os.path.join(WORK, 'g9', name)
        if os.path.exists(run_dir):
            shutil.rmtree(run_dir)
        os.makedirs(run_dir)
        self.log = os.path.join(WORK, 'g9', name + '.err')
        self.token = token
        argv = [BIN, 'train', '--config', 'config/tiny.toml', 'logging.run_dir=' + run_dir, 'inspect.linger_s=-1',
                'inspect.port=0'] + RUN_OV + TINY_TRAIN + list(extra) + (['inspect.token=' + token] if token else [])
        self.argv = argv
        self.p = spawn(argv, stdout=subprocess.DEVNULL, stderr=open(self.log, 'wb'))
        end = time.monotonic() + 90
        while time.monotonic() < end and self.p.poll() is None:
            m = re.search(r'live inspection at http://([\d.]+):(\d+)/', open(self.log, errors='replace').read())
            if m:
                self.port = int(m.group(2))
                return True
            time.sleep(0.2)
        return False

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is None:
            return None, 0, False
        t0 = time.monotonic()
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
        hang = wait_proc(self.p, 30)
        dur = time.monotonic() - t0
        reap_group(self.p)
        rc = self.p.returncode
        self.p = None
        return rc, dur, hang


INSP = Inspector()


def http_get(port, path='/status', token=None, timeout=5, headers=None):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
        h = dict(headers or {})
        if token:
            h['Authorization'] = 'Bearer ' + token
        c.request('GET', path, headers=h)
        resp = c.getresponse()
        body = resp.read()
        c.close()
        return resp.status, body, time.monotonic() - t0
    except Exception as e:
        return None, repr(e).encode(), time.monotonic() - t0


def raw_exchange(port, data, read=True, timeout=6, linger_read=1.0):
    """Sends raw bytes, returns what came back (up to 1 MB)."""
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    got = b''
    try:
        try:
            s.sendall(data)
        except OSError:
            pass
        if read:
            s.settimeout(timeout)
            try:
                while len(got) < (1 << 20):
                    b = s.recv(65536)
                    if not b:
                        break
                    got += b
            except (socket.timeout, OSError):
                pass
    finally:
        s.close()
    return got


def status_line(resp):
    m = re.match(rb'HTTP/1\.[01] (\d{3})', resp)
    return int(m.group(1)) if m else None


def hostile_actions(rng, token):
    """[(name, fn(port) -> list of problems)] - each fn runs its attack and returns problems."""
    auth = b'Authorization: Bearer ' + token.encode() + b'\r\n' if token else b''
    acts = []

    def probe_ok(port, label=''):
        st, body, dt = http_get(port, token=token)
        if st != 200:
            return ['GET /status %s failed (%s, %.1f s)' % (label, st if st else body[:60].decode(errors='replace'), dt)]
        if dt > 5:
            return ['GET /status %s took %.1f s' % (label, dt)]
        try:
            json.loads(body)
        except Exception:
            return ['GET /status %s is not JSON' % label]
        return []

    def idle(n):
        def fn(port):
            socks = []
            try:
                for _ in range(n):
                    try:
                        socks.append(socket.create_connection(('127.0.0.1', port), timeout=5))
                    except OSError:
                        break
                time.sleep(0.5)
                return probe_ok(port, 'with %d idle connections' % len(socks))
            finally:
                for s in socks:
                    s.close()
        return fn

    def slowloris(n, secs):
        def fn(port):
            stop = threading.Event()
            socks = []
            for _ in range(n):
                try:
                    s = socket.create_connection(('127.0.0.1', port), timeout=5)
                    s.sendall(b'GET /status HTTP/1.1\r\nHost: x\r\n')
                    socks.append(s)
                except OSError:
                    break

            def drip():
                while not stop.is_set():
                    for s in socks:
                        try:
                            s.send(b'X')
                        except OSError:
                            pass
                    time.sleep(0.5)
            t = threading.Thread(target=drip, daemon=True)
            t.start()
            probs = []
            try:
                for k in range(int(secs / 2)):
                    time.sleep(2)
                    probs += probe_ok(port, 'during a slowloris of %d' % len(socks))
                    if probs:
                        break
            finally:
                stop.set()
                t.join()
                for s in socks:
                    s.close()
            return probs
        return fn

    def raw(data, expect_status=None, forbid=(b'root:x:0:0',), label=None):
        def fn(port):
            got = raw_exchange(port, data)
            probs = []
            st = status_line(got)
            for fb in forbid:
                if fb in got:
                    probs.append('answer contains %r' % fb)
            if expect_status == 'not200' and st == 200:
                probs.append('review: answered 200 to %r' % data[:30])
            if expect_status == 'auth' and st == 200:
                probs.append('answered 200 without the right token to %r' % data[:60])
            return probs + probe_ok(port, 'after ' + (label or repr(data[:20])))
        return fn

    def concurrent(n):
        def fn(port):
            res = []

            def one():
                res.append(http_get(port, token=token, timeout=10)[0])
            ts = [threading.Thread(target=one) for _ in range(n)]
            [t.start() for t in ts]
            [t.join() for t in ts]
            bad = [x for x in res if x not in (200, 503)]
            probs = ['%d of %d concurrent GETs failed (%s)' % (len(bad), n, bad[:3])] if bad else []
            return probs + probe_ok(port, 'after %d concurrent GETs' % n)
        return fn

    def unread(n):
        def fn(port):
            s = socket.create_connection(('127.0.0.1', port), timeout=5)
            try:
                s.sendall((b'GET /steps HTTP/1.1\r\nHost: x\r\n' + auth + b'\r\n') * n)
            except OSError:
                pass
            try:
                return probe_ok(port, 'while %d answers go unread' % n)
            finally:
                s.close()
        return fn

    req = lambda m, path=b'/status', extra=b'': m + b' ' + path + b' HTTP/1.1\r\nHost: x\r\n' + auth + extra + b'\r\n'
    acts += [('200 idle connections', idle(200)), ('40 idle connections', idle(40)), ('500 idle connections', idle(500)),
             ('slowloris 40 x 8 s', slowloris(40, 8)), ('slowloris 100 x 8 s', slowloris(100, 8)),
             ('100 concurrent GETs', concurrent(100)), ('unread pipelined 500', unread(500)),
             ('pipelined 150', raw(req(b'GET') * 150, label='150 pipelined requests')),
             ('1 MB header', raw(b'GET /status HTTP/1.1\r\nHost: x\r\nX-A: ' + b'a' * (1 << 20) + b'\r\n\r\n', label='1 MB header')),
             ('10000 headers', raw(b'GET /status HTTP/1.1\r\n' + b''.join(b'X-%d: y\r\n' % k for k in range(10000)) + b'\r\n', label='10000 headers')),
             ('1 MB url', raw(b'GET /' + b'a' * (1 << 20) + b' HTTP/1.1\r\n\r\n', label='1 MB url')),
             ('garbage 1 KB', raw(bytes(rng.randrange(256) for _ in range(1024)), label='1 KB garbage')),
             ('garbage 1 MB', raw(rng.randbytes(1 << 20), label='1 MB garbage')),
             ('nul bytes', raw(b'\x00' * 65536, label='NULs')),
             ('tls client hello', raw(bytes.fromhex('16030100a5010000a10303') + rng.randbytes(160), label='TLS hello')),
             ('http2 preface', raw(b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + rng.randbytes(100), label='HTTP/2 preface')),
             ('crlf flood', raw(b'\r\n' * 100000, label='CRLF flood')),
             ('http/0.9', raw(b'GET /\r\n', label='HTTP/0.9')), ('http/1.0', raw(b'GET /status HTTP/1.0\r\n' + auth + b'\r\n', label='HTTP/1.0')),
             ('no host', raw(b'GET /status HTTP/1.1\r\n' + auth + b'\r\n', label='no Host')),
             ('header no colon', raw(b'GET /status HTTP/1.1\r\nHost x\r\nfoo\r\n\r\n', label='header without colon')),
             ('content-length huge', raw(req(b'GET', extra=b'Content-Length: 99999999999999999999\r\n'), label='huge Content-Length')),
             ('content-length negative', raw(req(b'GET', extra=b'Content-Length: -5\r\n'), label='negative Content-Length')),
             ('body never sent', raw(req(b'POST', extra=b'Content-Length: 1000000\r\n'), expect_status='not200', label='POST body never sent')),
             ('bad chunked', raw(req(b'POST', extra=b'Transfer-Encoding: chunked\r\n') + b'zzzz\r\nabc\r\n', expect_status='not200', label='bad chunk')),
             ('chunked huge size', raw(req(b'POST', extra=b'Transfer-Encoding: chunked\r\n') + b'ffffffffffffffffff\r\nabc\r\n', expect_status='not200', label='huge chunk')),
             ('expect 100', raw(req(b'GET', extra=b'Expect: 100-continue\r\nContent-Length: 10\r\n'), label='Expect: 100-continue')),
             ('percent nul', raw(req(b'GET', b'/status%00'), label='/status%00')),
             ('percent ff', raw(req(b'GET', b'/%ff%fe'), label='/%ff')),
             ('unicode path', raw(req(b'GET', '/статус'.encode()), label='unicode path')),
             ('query junk', raw(req(b'GET', b'/status?%%%&&==&a=' + b'b' * 10000), label='query junk')),
             ('absolute uri', raw(req(b'GET', b'http://evil.example/status'), label='absolute URI')),
             ('star', raw(req(b'OPTIONS', b'*'), label='OPTIONS *'))]
    for m in [b'POST', b'PUT', b'DELETE', b'PATCH', b'TRACE', b'CONNECT', b'FOO', b'get', b'GET GET', b'G\x00T', b'']:
        acts.append(('method %r' % m, raw(req(m), expect_status='not200', label='method %r' % m)))
    for path in [b'/../../../../etc/passwd', b'/%2e%2e/%2e%2e/%2e%2e/etc/passwd', b'//etc/passwd', b'/static/../../etc/passwd',
                 b'/..%2f..%2f..%2fetc%2fpasswd', b'/%252e%252e/etc/passwd', b'/....//....//etc/passwd', b'/etc/passwd',
                 b'/proc/self/environ', b'/.pedagogy.lock', b'/config.toml', b'/metrics.jsonl', b'/checkpoints/step-000002/config.json']:
        acts.append(('path %r' % path, raw(req(b'GET', path), forbid=(b'root:x:0:0', b'PATH=', b'"hidden_size"', b'[tutor]'), label='path %r' % path)))
    for path in [b'/', b'/status', b'/metrics', b'/dialogs', b'/steps']:
        acts.append(('plain GET %r' % path, raw(req(b'GET', path), label='GET %r' % path)))
    return acts


def token_actions(token):
    acts = []

    def authcase(path, headers, want_ok, label):
        def fn(port):
            data = b'GET ' + path + b' HTTP/1.1\r\nHost: x\r\n' + headers + b'\r\n'
            got = raw_exchange(port, data)
            st = status_line(got)
            probs = []
            if want_ok and st != 200:
                probs.append('right token refused (%s)' % st)
            if not want_ok and st == 200:
                probs.append('answered 200 to %s' % label)
            if not want_ok and st is None:
                probs.append('review: no HTTP answer to %s' % label)
            st2, body, dt = http_get(port, token=token)
            if st2 != 200 or dt > 5:
                probs.append('GET /status with the token failed after %s (%s, %.1f s)' % (label, st2, dt))
            return probs
        return fn
    t = token.encode()
    wrong = [(b'', 'no Authorization'), (b'Authorization: Bearer wrong\r\n', 'a wrong token'),
             (b'Authorization: Bearer \r\n', 'an empty token'), (b'Authorization: bearer ' + t + b'\r\n', 'lower-case scheme (may be fine)'),
             (b'Authorization: Bearer ' + t[:-1] + b'\r\n', 'a token prefix'), (b'Authorization: Bearer ' + t + b'x\r\n', 'the token plus a byte'),
             (b'Authorization: Basic ' + t + b'\r\n', 'Basic scheme'), (b'Authorization: ' + t + b'\r\n', 'no scheme'),
             (b'Authorization: Bearer ' + t.upper() + b'\r\n', 'upper-case token'),
             (b'Authorization: Bearer ' + b'a' * 100000 + b'\r\n', 'a 100 KB token'),
             (b'Authorization: Bearer wrong\r\nAuthorization: Bearer ' + t + b'\r\n', 'two Authorization headers (wrong first)'),
             (b'X-Authorization: Bearer ' + t + b'\r\n', 'X-Authorization')]
    for path in [b'/status', b'/metrics', b'/dialogs', b'/steps', b'/']:
        for hdr, label in wrong:
            if label.startswith('lower-case') and path != b'/status':
                continue
            acts.append(('token: %s on %s' % (label, path.decode()), authcase(path, hdr, None if 'may be fine' in label else False, label)))
    for path in [b'/?token=wrong', b'/status?token=wrong', b'/?token=', b'/?token=' + t + b'x', b'/?token[]=' + t]:
        acts.append(('token: query %r' % path, authcase(path, b'', False, 'query %r' % path)))
    for path in [b'/status', b'/?token=' + t]:
        acts.append(('token: right token %r' % path, authcase(path, b'Authorization: Bearer ' + t + b'\r\n' if b'?' not in path else b'', True, 'the right token')))
    return acts


def insp_runner(case):
    flags = []
    if case.insp == 'start':
        ok = INSP.start(case.name, token=case.token)
        case.argv = INSP.argv
        r = {'rc': None if INSP.alive() else INSP.p.returncode, 'stdout': '', 'stderr': open(INSP.log, errors='replace').read(),
             'duration': 0, 'hang': False}
        return r, ('ok' if ok else 'crash'), ('' if ok else 'no inspection address printed'), flags
    if case.insp == 'stop':
        log = INSP.log
        rc, dur, hang = INSP.stop()
        r = {'rc': rc, 'stdout': '', 'stderr': open(log, errors='replace').read() if log else '', 'duration': round(dur, 2), 'hang': hang}
        if hang:
            return r, 'hang', 'inspector with linger_s=-1 did not exit within 30 s of SIGTERM', flags
        if rc != 143:
            if rc is not None and rc < 0 and rc != -signal.SIGTERM:
                return r, 'crash', 'ended by %s' % signal.Signals(-rc).name, flags
            flags.append('review: exit %s after SIGTERM (expected 143)' % rc)
        if CRASH_RE.search(r['stderr']):
            return r, 'crash', 'crash text: ' + CRASH_RE.search(r['stderr']).group(0), flags
        return r, 'ok', '', flags
    t0 = time.monotonic()
    if not INSP.alive():
        return {'rc': None, 'stdout': '', 'stderr': '', 'duration': 0, 'hang': False}, 'crash', 'inspector process not running', flags
    try:
        probs = case.act(INSP.port)
    except Exception as e:
        probs = ['probe error: %r' % e]
    dur = time.monotonic() - t0
    r = {'rc': None, 'stdout': '\n'.join(probs), 'stderr': '', 'duration': round(dur, 2), 'hang': False}
    if not INSP.alive():
        rc = INSP.p.returncode
        r['stderr'] = open(INSP.log, errors='replace').read()
        return r, 'crash', 'the job died (rc %s) under %s' % (rc, case.desc), flags
    review = [p for p in probs if p.startswith('review:')]
    probs = [p for p in probs if not p.startswith('review:')]
    flags += review
    if any('GET /status' in p for p in probs):
        return r, 'hang', '; '.join(probs)[:300], flags
    if probs:
        return r, 'silent loss', '; '.join(probs)[:300], flags
    return r, 'ok', '', flags


def group9(rng):
    cases = []
    d = os.path.join(WORK, 'g9')

    def mk(desc, insp, **kw):
        c = Case(9, desc, ['python3', __file__, '--groups', '9'], timeout=60, kind='inspect:' + desc.split(' ')[0], runner=insp_runner)
        c.insp = insp
        for k, v in kw.items():
            setattr(c, k, v)
        return c
    cases.append(mk('start job A (no token)', 'start', name='runA', token=None))
    for name, fn in hostile_actions(rng, None):
        cases.append(mk('A: ' + name, 'act', act=fn))
    cases.append(mk('stop job A with SIGTERM', 'stop'))
    tok = 'secret-token-123'
    cases.append(mk('start job B (inspect.token set)', 'start', name='runB', token=tok))
    for name, fn in token_actions(tok):
        cases.append(mk('B: ' + name, 'act', act=fn))
    for name, fn in rng.sample(hostile_actions(rng, tok), 8):
        cases.append(mk('B: ' + name, 'act', act=fn))
    cases.append(mk('stop job B with SIGTERM', 'stop'))
    # config-level refusals
    busy = socket.socket()
    busy.bind(('127.0.0.1', 0))
    busy.listen(1)
    group9.busy = busy
    for desc, ov, names in [('inspect.host=0.0.0.0 without a token', ['inspect.host=0.0.0.0'], ['inspect.token']),
                            ('inspect.port in use', ['inspect.port=%d' % busy.getsockname()[1]], ['inspect.port', str(busy.getsockname()[1])]),
                            ('inspect.port=70000', ['inspect.port=70000'], ['inspect.port']),
                            ('inspect.host=not-an-ip', ['inspect.host=not..valid'], ['inspect.host'])]:
        run_dir = os.path.join(d, 'cfg%d' % len(cases))
        cases.append(Case(9, 'train with ' + desc, [BIN, 'train', '--config', 'config/tiny.toml', 'logging.run_dir=' + run_dir] +
                          RUN_OV + TINY_TRAIN + ov, timeout=120, expect='bad', why=desc, names=names, kind='inspect:config'))
    return cases


# ----------------------------------------------------------------------------------------------
# group 10: fake OpenAI-compatible servers

def completion(n, content='Let me think. The answer is \\boxed{5}.', usage=True):
    d = {'id': 'x', 'object': 'chat.completion', 'created': 0, 'model': 'm',
         'choices': [{'index': i, 'message': {'role': 'assistant', 'content': content}, 'finish_reason': 'stop'} for i in range(n)]}
    if usage:
        d['usage'] = {'prompt_tokens': 10, 'completion_tokens': 5 * n, 'total_tokens': 10 + 5 * n}
    return json.dumps(d).encode()


def http_resp(status, body, ctype=b'application/json', extra=b''):
    reason = {200: b'OK', 500: b'Internal Server Error', 429: b'Too Many Requests', 401: b'Unauthorized',
              404: b'Not Found', 302: b'Found', 503: b'Service Unavailable'}.get(status, b'X')
    return (b'HTTP/1.1 %d ' % status + reason + b'\r\nContent-Type: ' + ctype + b'\r\nContent-Length: %d\r\n' % len(body) +
            extra + b'Connection: close\r\n\r\n' + body)


class FakeServer:
    def __init__(self, mode):
        self.mode = mode
        self.stop_ev = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.calls = 0
        self.lock = threading.Lock()
        self.conns = []
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.conns.append(c)
            threading.Thread(target=self.handle, args=(c,), daemon=True).start()

    def sleep(self, s):
        return self.stop_ev.wait(s)

    def read_request(self, c):
        c.settimeout(0.5)
        buf = b''
        end = time.monotonic() + 30
        while b'\r\n\r\n' not in buf:
            if self.stop_ev.is_set() or time.monotonic() > end:
                return None
            try:
                b = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not b:
                return None
            buf += b
        head, body = buf.split(b'\r\n\r\n', 1)
        m = re.search(rb'(?i)content-length:\s*(\d+)', head)
        n = int(m.group(1)) if m else 0
        while len(body) < n:
            if self.stop_ev.is_set() or time.monotonic() > end:
                return None
            try:
                b = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return None
            if not b:
                break
            body += b
        try:
            return json.loads(body)
        except Exception:
            return {}

    def send(self, c, data):
        try:
            c.sendall(data)
        except OSError:
            pass

    def handle(self, c):
        try:
            mode = self.mode
            if mode == 'close_immediately':
                c.close()
                return
            if mode == 'reset':
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                c.close()
                return
            if mode == 'accept_no_read':
                self.sleep(3600)
                return
            req = self.read_request(c)
            if req is None:
                return
            with self.lock:
                self.calls += 1
                k = self.calls
            n = req.get('n', 1) if isinstance(req, dict) else 1
            n = n if isinstance(n, int) and n > 0 else 1
            ok = http_resp(200, completion(n))
            if mode == 'healthy':
                self.send(c, ok)
            elif mode == 'healthy_no_usage':
                self.send(c, http_resp(200, completion(n, usage=False)))
            elif mode == 'slow_1s':
                self.sleep(1)
                self.send(c, ok)
            elif mode == 'never_answer':
                self.sleep(3600)
            elif mode == 'slow_past_timeout':
                self.sleep(8)
                self.send(c, ok)
            elif mode == 'trickle':
                for ch in ok:
                    if self.sleep(0.3):
                        break
                    self.send(c, bytes([ch]))
            elif mode == 'trickle_headers_forever':
                self.send(c, b'HTTP/1.1 200 OK\r\n')
                while not self.sleep(0.5):
                    self.send(c, b'X-Slow: 1\r\n')
            elif mode == 'malformed_json':
                self.send(c, http_resp(200, b'{"choices": [{"message": {"content": "hi"'))
            elif mode == 'json_array':
                self.send(c, http_resp(200, b'[]'))
            elif mode == 'json_null':
                self.send(c, http_resp(200, b'null'))
            elif mode == 'json_number':
                self.send(c, http_resp(200, b'42'))
            elif mode == 'no_choices':
                self.send(c, http_resp(200, b'{"id": "x"}'))
            elif mode == 'choices_empty':
                self.send(c, http_resp(200, b'{"choices": []}'))
            elif mode == 'choices_not_list':
                self.send(c, http_resp(200, b'{"choices": {"0": 1}}'))
            elif mode == 'wrong_n_more':
                self.send(c, http_resp(200, completion(n + 1)))
            elif mode == 'wrong_n_one':
                self.send(c, http_resp(200, completion(1) if n > 1 else completion(2)))
            elif mode == 'choice_no_message':
                self.send(c, http_resp(200, json.dumps({'choices': [{'index': i} for i in range(n)]}).encode()))
            elif mode == 'content_number':
                self.send(c, http_resp(200, json.dumps({'choices': [{'message': {'content': 5}} for i in range(n)]}).encode()))
            elif mode == 'content_null':
                self.send(c, http_resp(200, json.dumps({'choices': [{'message': {'content': None}} for i in range(n)]}).encode()))
            elif mode == 'http500':
                self.send(c, http_resp(500, b'{"error": "boom"}'))
            elif mode == 'http429':
                self.send(c, http_resp(429, b'{"error": "slow down"}'))
            elif mode == 'http429_retry_after':
                self.send(c, http_resp(429, b'{"error": "slow down"}', extra=b'Retry-After: 100000\r\n'))
            elif mode == 'http503_html':
                self.send(c, http_resp(503, b'<html>' + b'x' * 100000 + b'</html>', ctype=b'text/html'))
            elif mode == 'http401':
                self.send(c, http_resp(401, b'{"error": "bad key"}'))
            elif mode == 'http404':
                self.send(c, http_resp(404, b'not found', ctype=b'text/plain'))
            elif mode == 'http400_top_k':
                self.send(c, http_resp(400, b'{"error": "unknown parameter top_k"}'))
            elif mode == 'redirect_loop':
                self.send(c, http_resp(302, b'', extra=b'Location: /v1/chat/completions\r\n'))
            elif mode == 'close_mid_body':
                full = http_resp(200, completion(n))
                cut = full.replace(b'Content-Length: %d' % len(completion(n)), b'Content-Length: %d' % (len(completion(n)) + 1000))
                self.send(c, cut[:len(cut) - 30])
            elif mode == 'huge_body':
                body = completion(n, content='x' * (48 << 20))
                self.send(c, http_resp(200, body))
            elif mode == 'huge_headers':
                self.send(c, b'HTTP/1.1 200 OK\r\nX-Big: ' + b'a' * (16 << 20) + b'\r\nContent-Length: 2\r\n\r\n{}')
            elif mode == 'many_headers':
                self.send(c, b'HTTP/1.1 200 OK\r\n' + b''.join(b'X-%d: y\r\n' % i for i in range(100000)) + b'Content-Length: 2\r\n\r\n{}')
            elif mode == 'non_utf8_content':
                body = completion(n, content='PLACEHOLDER').replace(b'PLACEHOLDER', b'\xff\xfe\\boxed{5}\xc0')
                self.send(c, http_resp(200, body))
            elif mode == 'lone_surrogate':
                body = completion(n, content='PLACEHOLDER').replace(b'PLACEHOLDER', b'\\ud800 \\boxed{5}')
                self.send(c, http_resp(200, body))
            elif mode == 'nul_content':
                self.send(c, http_resp(200, completion(n, content='a\u0000b \\boxed{5}')))
            elif mode == 'long_content':
                self.send(c, http_resp(200, completion(n, content='word ' * 400000)))
            elif mode == 'chunked_bad':
                self.send(c, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\nabc\r\n0\r\n\r\n')
            elif mode == 'chunked_forever':
                self.send(c, b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')
                while not self.sleep(0.01):
                    self.send(c, b'400\r\n' + b' ' * 1024 + b'\r\n')
            elif mode == 'garbage_status':
                self.send(c, b'HELLO WORLD\r\n\r\n')
            elif mode == 'http09':
                self.send(c, completion(n))
            elif mode == 'content_length_negative':
                self.send(c, b'HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n' + completion(n))
            elif mode == 'usage_negative':
                d = json.loads(completion(n))
                d['usage']['completion_tokens'] = -5
                self.send(c, http_resp(200, json.dumps(d).encode()))
            elif mode == 'usage_huge':
                d = json.loads(completion(n))
                d['usage']['completion_tokens'] = 10**18
                self.send(c, http_resp(200, json.dumps(d).encode()))
            elif mode == 'usage_float':
                d = json.loads(completion(n))
                d['usage']['completion_tokens'] = 1e300
                self.send(c, http_resp(200, json.dumps(d).encode()))
            elif mode == 'finish_reason_weird':
                d = json.loads(completion(n))
                for ch in d['choices']:
                    ch['finish_reason'] = 123
                self.send(c, http_resp(200, json.dumps(d).encode()))
            elif mode == 'deep_json':
                self.send(c, http_resp(200, b'{"choices": [], "x": ' + b'[' * 200000 + b']' * 200000 + b'}'))
            elif mode == 'deep_json_unclosed':
                self.send(c, http_resp(200, b'{"x": ' + b'[' * 500000))
            elif mode == 'flapping':
                self.send(c, ok if k % 2 == 0 else http_resp(500, b'{"error": "flap"}'))
            elif mode == 'first_429_then_ok':
                self.send(c, ok if k > 2 else http_resp(429, b'{}'))
            elif mode == 'gzip_garbage':
                self.send(c, http_resp(200, random.Random(1).randbytes(200), extra=b'Content-Encoding: gzip\r\n'))
            elif mode == 'html_200':
                self.send(c, http_resp(200, b'<html>hello</html>', ctype=b'text/html'))
            elif mode == 'sse_stream':
                self.send(c, http_resp(200, b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n', ctype=b'text/event-stream'))
            self.sleep(0.2)
        finally:
            try:
                c.close()
            except OSError:
                pass

    def close(self):
        self.stop_ev.set()
        try:
            self.sock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.t.join(timeout=2)


FAKE_MODES = {  # mode -> expectation
    'healthy': 'good', 'healthy_no_usage': 'good', 'slow_1s': 'good', 'flapping': 'good', 'first_429_then_ok': 'good',
    'never_answer': 'bad', 'accept_no_read': 'bad', 'slow_past_timeout': 'bad', 'trickle': 'bad',
    'trickle_headers_forever': 'bad', 'malformed_json': 'bad', 'json_array': 'bad', 'json_null': 'bad',
    'json_number': 'bad', 'no_choices': 'bad', 'choices_empty': 'bad', 'choices_not_list': 'bad',
    'wrong_n_more': 'bad', 'wrong_n_one': 'bad', 'choice_no_message': 'bad', 'content_number': 'bad',
    'content_null': 'bad', 'http500': 'bad', 'http429': 'bad', 'http429_retry_after': 'bad', 'http503_html': 'bad',
    'http401': 'bad', 'http404': 'bad', 'http400_top_k': 'bad', 'redirect_loop': 'bad', 'close_mid_body': 'bad',
    'close_immediately': 'bad', 'reset': 'bad', 'huge_body': 'any', 'huge_headers': 'bad', 'many_headers': 'bad',
    'non_utf8_content': 'any', 'lone_surrogate': 'any', 'nul_content': 'any', 'long_content': 'any',
    'chunked_bad': 'bad', 'chunked_forever': 'bad', 'garbage_status': 'bad', 'http09': 'bad',
    'content_length_negative': 'bad', 'usage_negative': 'any', 'usage_huge': 'any', 'usage_float': 'any',
    'finish_reason_weird': 'any', 'deep_json': 'bad', 'deep_json_unclosed': 'bad', 'gzip_garbage': 'bad',
    'html_200': 'bad', 'sse_stream': 'bad', 'unreachable': 'bad'}
FAKE_TIMEOUT_S, FAKE_RETRIES = 5, 3
FAKE_BOUND = FAKE_TIMEOUT_S * (FAKE_RETRIES + 1) + 25


def fake_runner(case):
    srv = None
    flags = []
    if case.mode == 'unreachable':
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
    else:
        srv = FakeServer(case.mode)
        port = srv.port
    argv = [a.replace('PORT', str(port)) for a in case.argv]
    case.argv = argv
    try:
        r = run_proc(argv, case.timeout)
    finally:
        if srv:
            srv.close()
    if r['hang']:
        return r, 'hang', 'no exit within %d s (server mode %s)' % (case.timeout, case.mode), flags
    cls, reason, flags = classify(case, r)
    if cls != 'ok':
        return r, cls, reason, flags
    recs, prob = jsonl_lines(case.out)
    if prob:
        return r, 'silent loss', prob, flags
    if len(recs) != 2 and not (r['rc'] != 0 and case.expect == 'good'):
        return r, 'silent loss', '%d records written, expected 2 (failed dialogs must be recorded)' % len(recs), flags
    statuses = [x.get('status') for x in recs]
    if case.expect == 'bad' and 'ok' in statuses:
        return r, 'silent loss', 'a dialog recorded ok from a server that never gave a valid answer (%s)' % statuses, flags
    if case.expect == 'good' and (r['rc'] != 0 or any(s != 'ok' for s in statuses)):
        errs = [x.get('error', '') for x in recs if x.get('status') != 'ok']
        flags.append('review: healthy-ish server (%s) gave exit %s, statuses %s: %s' % (case.mode, r['rc'], statuses, (errs or [''])[0][:150]))
    if r['duration'] > (FAKE_BOUND if case.expect != 'good' else 40):
        return r, 'hang', 'took %.1f s (bound %d s)' % (r['duration'], FAKE_BOUND), flags
    for x in recs:
        if x.get('status') != 'ok':
            e = x.get('error') or ''
            if not e:
                return r, 'unclear', 'failed record without an error text', flags
            if not re.search(r'(student|tutor|judge) generator', e) or not re.search(r'hint', e, re.I):
                return r, 'unclear', 'failed dialog reason lacks the role or a hint: %s' % e[:200], flags
        for m in x.get('messages', []):
            t = m.get('tokens')
            if isinstance(t, (int, float)) and (t < 0 or t > 10**7):
                return r, 'silent loss', 'record keeps an absurd token count %r for a %s turn (the server\'s usage, trusted)' % (t, m.get('role')), flags
    return r, 'ok', '', flags


def group10(rng):
    cases = []
    d = os.path.join(WORK, 'g10')
    modes = sorted(FAKE_MODES)
    plan = modes + modes
    while len(plan) < 100:
        plan.append(rng.choice(modes))
    for j, mode in enumerate(plan):
        out = os.path.join(d, 'out', 'f%03d-%s.jsonl' % (j, mode))
        extra = [] if j % 7 else ['classroom.number_student_attempts=1']
        argv = rollout_argv(None, out, ['student.backend=openai', 'student.init=""',
                                         'student.openai.base_url=http://127.0.0.1:PORT/v1', 'student.openai.model=m',
                                         'student.openai.timeout_s=%d' % FAKE_TIMEOUT_S] + extra)
        c = Case(10, 'fake server: %s' % mode, argv, timeout=120, expect=FAKE_MODES[mode], why='server ' + mode,
                 names=['student', '127.0.0.1'], kind='fake:' + mode, runner=fake_runner,
                 clarity_fn=lambda r: (True, ''))
        c.mode = mode
        c.out = out
        cases.append(c)
    return cases


# ----------------------------------------------------------------------------------------------
# group 11: MPI

MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT='1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM='1')


def rank_pids(run_dir):
    """{rank: pid} of the pedagogy processes whose command line names run_dir."""
    out = {}
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            cmd = open('/proc/%s/cmdline' % pid, 'rb').read()
            if run_dir.encode() not in cmd or b'pedagogy' not in cmd or b'mpirun' in cmd.split(b'\0')[0]:
                continue
            env = open('/proc/%s/environ' % pid, 'rb').read().split(b'\0')
            for e in env:
                if e.startswith(b'OMPI_COMM_WORLD_RANK='):
                    out[int(e.split(b'=')[1])] = int(pid)
        except OSError:
            continue
    return out


def listening_ports(pids):
    inodes = {}
    for pid in pids:
        try:
            for fd in os.listdir('/proc/%d/fd' % pid):
                try:
                    l = os.readlink('/proc/%d/fd/%s' % (pid, fd))
                except OSError:
                    continue
                m = re.match(r'socket:\[(\d+)\]', l)
                if m:
                    inodes[m.group(1)] = pid
        except OSError:
            continue
    ports = []
    for f in ('/proc/net/tcp', '/proc/net/tcp6'):
        try:
            for ln in open(f).read().splitlines()[1:]:
                parts = ln.split()
                if parts[3] == '0A' and parts[9] in inodes:
                    ports.append(int(parts[1].split(':')[1], 16))
        except OSError:
            continue
    return sorted(set(ports))


def kill_strays(run_dir):
    for pid in rank_pids(run_dir).values():
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def mpi_runner(case):
    m = case.mpi
    run_dir = m['run_dir']
    if os.path.exists(run_dir):
        shutil.rmtree(run_dir)
    flags = []
    info = {}

    def on_start(p):
        sent = []
        if m['action'] is None:
            return sent
        end = time.monotonic() + 60
        ranks = {}
        while time.monotonic() < end and p.poll() is None and m['action'] != 'bytes':
            ranks = rank_pids(run_dir)
            if len(ranks) >= 4 and os.path.exists(os.path.join(run_dir, 'metrics.jsonl')):
                break
            time.sleep(0.2)
        if m['action'] != 'bytes':
            time.sleep(m.get('delay', 1.0))
        info['ranks'] = ranks
        if m['action'] == 'bytes':
            # the actor ports are cluster.port + rank, open only until rank 0 has connected: hammer
            # them from the start
            ports = [m['port'] + k for k in range(4)]
            info['ports'] = ports
            hits = 0
            stop = time.monotonic() + m.get('secs', 8)
            r2 = random.Random(m['seed'])
            while time.monotonic() < stop and p.poll() is None:
                for port in ports:
                    try:
                        s = socket.create_connection(('127.0.0.1', port), timeout=1)
                        s.sendall(r2.choice([r2.randbytes(r2.randrange(1, 5000)), b'\x16\x03\x01\x00\x05hello', b'\x00' * 1000,
                                             b'GET / HTTP/1.1\r\n\r\n', bytes.fromhex('16030100a5010000a10303') + r2.randbytes(200)]))
                        hits += 1
                        if r2.random() < 0.3 or len(info.get('held', [])) >= 200:
                            s.close()
                        else:
                            info.setdefault('held', []).append(s)  # a stranger that stays connected, silent
                    except OSError:
                        pass
                time.sleep(0.02)
            info['hits'] = hits
        elif m['action'] in ('SIGSTOP', 'SIGTERM', 'SIGKILL'):
            pid = ranks.get(m['rank'])
            if pid:
                os.kill(pid, getattr(signal, m['action']))
                info['t_signal'] = time.monotonic()
        elif m['action'] == 'SIGINT-mpirun':
            os.kill(p.pid, signal.SIGINT)
            sent.append(int(signal.SIGINT))
        return sent
    r = run_logged(case.argv, os.path.join(WORK, 'g11', os.path.basename(run_dir)), case.timeout, on_start, env=MPI_ENV)
    r['sent'] = r.get('sent', []) or []
    strays = rank_pids(run_dir)
    kill_strays(run_dir)
    for sock in info.get('held', []):
        sock.close()
    r['stdout'] = 'probe: ranks %s ports %s connections %s\n' % (info.get('ranks'), info.get('ports'), info.get('hits')) + r['stdout']
    if m['action'] == 'bytes' and not info.get('hits'):
        flags.append('review: no actor port accepted a connection (closed before the probe reached it)')
    if strays or r['leftover']:
        return r, 'hang', 'ranks still running after mpirun ended (%s)' % sorted(strays), flags
    r['stderr'] = r['stdout'] + r['stderr']
    if r['hang']:
        return r, 'hang', 'mpirun did not end within %d s (%s)' % (case.timeout, m['action']), flags
    if CRASH_RE.search(r['stderr']):
        return r, 'crash', 'crash text: ' + [ln for ln in r['stderr'].splitlines() if CRASH_RE.search(ln)][0][:200], flags
    if m['action'] in (None, 'bytes'):
        if r['rc'] != 0:
            return r, 'unclear' if not clarity(r['stderr'])[0] else 'silent loss', 'job failed (exit %s) under %s; ports %s' % (r['rc'], m['action'], info.get('ports')), flags
        probs = train_final(run_dir, m['steps'], 4)()
        if probs:
            return r, 'silent loss', '; '.join(probs), flags
        return r, 'ok', '', flags
    if m['action'] == 'mpmd':
        if r['rc'] == 0:
            return r, 'silent loss', 'ranks with different overrides were not refused', flags
        ok, why = clarity(r['stderr'], names=m['names'])
        return r, ('ok' if ok else 'unclear'), why, flags
    # a rank stopped / killed
    if 'ranks' in info and m['rank'] not in info['ranks']:
        flags.append('review: rank %d not found, nothing sent' % m['rank'])
    if r['rc'] == 0 and m['action'] != 'SIGINT-mpirun':
        return r, 'silent loss', 'exit 0 although rank %d got %s' % (m['rank'], m['action']), flags
    if m['action'] == 'SIGINT-mpirun' and r['rc'] not in (0, 130):
        flags.append('review: mpirun exit %s after SIGINT' % r['rc'])
    if 't_signal' in info and r['duration'] > m['bound']:
        return r, 'hang', 'job took %.0f s to end after %s to rank %d' % (r['duration'], m['action'], m['rank']), flags
    if m['action'] in ('SIGSTOP', 'SIGKILL') and not re.search(r'rank %d' % m['rank'], r['stderr']):
        return r, 'unclear', 'the job does not name rank %d' % m['rank'], flags
    _, prob = jsonl_lines(os.path.join(run_dir, 'metrics.jsonl'))
    if prob:
        return r, 'silent loss', prob, flags
    return r, 'ok', '', flags


def group11(rng):
    if not shutil.which('mpirun'):
        return []
    cases = []
    d = os.path.join(WORK, 'g11')
    os.makedirs(d, exist_ok=True)

    def train_args(run_dir, steps, extra=()):
        return [BIN, 'train', '--config', 'config/tiny-mpi.toml', 'logging.run_dir=' + run_dir, f'tutor.model={TUTOR}',
                f'student.model={STUDENT}'] + TINY_TRAIN[:-1] + ['train.max_steps=%d' % steps, 'cluster.unresponsive_timeout_s=10',
                                                                  'cluster.collective_timeout_s=60'] + list(extra)
    specs = [('baseline', None, {}), ('random bytes to the actor ports', 'bytes', {'secs': 15}),
             ('random bytes to the actor ports (again)', 'bytes', {'secs': 15}),
             ('random bytes to the actor ports (3)', 'bytes', {'secs': 15}),
             ('random bytes to the actor ports (4)', 'bytes', {'secs': 15}),
             ('different train.mu per rank', 'mpmd', {'ov': ['train.mu=1', 'train.mu=2']}),
             ('different train.seed per rank', 'mpmd', {'ov': ['train.seed=1', 'train.seed=2']}),
             ('different learning rate per rank', 'mpmd', {'ov': ['train.learning_rate=1e-4', 'train.learning_rate=2e-4']}),
             ('SIGSTOP to rank 1 (tutor)', 'SIGSTOP', {'rank': 1}), ('SIGSTOP to rank 3 (student)', 'SIGSTOP', {'rank': 3}),
             ('SIGSTOP to rank 2 (learner)', 'SIGSTOP', {'rank': 2}),
             ('SIGTERM to rank 1', 'SIGTERM', {'rank': 1}), ('SIGTERM to rank 2', 'SIGTERM', {'rank': 2}),
             ('SIGTERM to rank 0', 'SIGTERM', {'rank': 0}),
             ('SIGKILL to rank 3', 'SIGKILL', {'rank': 3}), ('SIGKILL to rank 2', 'SIGKILL', {'rank': 2}),
             ('SIGINT to mpirun', 'SIGINT-mpirun', {'rank': 0})]
    for j, (desc, action, kw) in enumerate(specs):
        run_dir = os.path.join(d, 'run%02d' % j)
        steps = 4 if action in (None, 'bytes', 'mpmd') else 12
        base = ['mpirun', '-np', '4', '--oversubscribe']
        if action == 'mpmd':
            a1 = train_args(run_dir, steps, [kw['ov'][0]])
            a2 = train_args(run_dir, steps, [kw['ov'][1]])
            argv = ['mpirun', '--oversubscribe', '-np', '2'] + a1 + [':', '-np', '2'] + a2
        elif action == 'bytes':
            argv = base + train_args(run_dir, steps, ['cluster.port=%d' % (21000 + 10 * j)])
        else:
            argv = base + train_args(run_dir, steps)
        m = {'run_dir': run_dir, 'port': 21000 + 10 * j, 'action': action, 'steps': steps, 'seed': j, 'rank': kw.get('rank', 0),
             'bound': 10 + 40 if action == 'SIGSTOP' else 40, 'names': [kw.get('ov', ['x'])[0].split('=')[0], 'override', 'rank']}
        m.update({k: v for k, v in kw.items() if k in ('secs', 'delay')})
        c = Case(11, 'mpi: ' + desc, argv, timeout=180, kind='mpi:' + (action or 'baseline'), runner=mpi_runner, env=MPI_ENV)
        c.mpi = m
        cases.append(c)
    return cases



# ----------------------------------------------------------------------------------------------
# driver

GENERATORS = {1: group1, 2: group2, 3: group3, 4: group4, 5: group5, 6: group6, 7: group7, 8: group8,
              9: group9, 10: group10, 11: group11}
SEQUENTIAL = {9, 11}


def ensure_models():
    for path, fam, seed in [(TUTOR, 'qwen2', 1), (STUDENT, 'llama', 2)]:
        if not os.path.exists(os.path.join(path, 'model.safetensors')):
            r = run_proc([BIN, 'init-model', '--family', fam, '--preset', 'tiny', '--seed', str(seed), '--out', path, '--force'], 120)
            if r['rc'] != 0:
                sys.exit('cannot make %s: %s' % (path, r['stderr']))


def cache_fingerprint():
    out = {}
    for root, _, files in os.walk(CACHE):
        for f in files:
            p = os.path.join(root, f)
            out[p] = (os.path.getsize(p), open(p, 'rb').read()[-4096:])
    return out


def normalise(reason):
    r = re.sub(re.escape(WORK) + r'/\S+', 'PATH', reason)
    r = re.sub(r'\d+(\.\d+)?', 'N', r)
    return r[:120]


def summarise(rows, out=sys.stdout):
    groups = sorted({r['group'] for r in rows})
    hdr = '%-3s %-22s %6s %7s %6s %12s %8s %6s %7s' % ('#', 'group', 'cases', 'crash', 'hang', 'silent loss', 'unclear', 'ok', 'review')
    print(hdr, file=out)
    print('-' * len(hdr), file=out)
    tot = {c: 0 for c in CLASSES}
    tot_n = tot_rev = 0
    for g in groups:
        rs = [r for r in rows if r['group'] == g]
        cnt = {c: sum(1 for r in rs if r['class'] == c) for c in CLASSES}
        rev = sum(1 for r in rs if any(f.startswith('review') for f in r['flags']))
        for c in CLASSES:
            tot[c] += cnt[c]
        tot_n += len(rs)
        tot_rev += rev
        print('%-3d %-22s %6d %7d %6d %12d %8d %6d %7d' % (g, GROUP_NAMES[g], len(rs), cnt['crash'], cnt['hang'],
                                                           cnt['silent loss'], cnt['unclear'], cnt['ok'], rev), file=out)
    print('-' * len(hdr), file=out)
    print('%-3s %-22s %6d %7d %6d %12d %8d %6d %7d' % ('', 'total', tot_n, tot['crash'], tot['hang'], tot['silent loss'],
                                                       tot['unclear'], tot['ok'], tot_rev), file=out)


def list_findings(rows, out=sys.stdout):
    buckets = {}
    for r in rows:
        if r['class'] == 'ok':
            continue
        key = (r['group'], r['class'], r['kind'], normalise(r['reason']))
        buckets.setdefault(key, []).append(r)
    print('\nnon-ok cases (deduplicated: group, class, kind, reason; count; one command):', file=out)
    for key in sorted(buckets):
        rs = buckets[key]
        print('[g%d %s] x%d %s: %s' % (key[0], key[1], len(rs), rs[0]['desc'][:90], rs[0]['reason'][:200]), file=out)
        print('    ids %s' % ' '.join(x['id'] for x in rs[:8]) + (' ...' if len(rs) > 8 else ''), file=out)
        print('    $ ' + rs[0]['cmd'][:600], file=out)
    rev = {}
    for r in rows:
        for f in r['flags']:
            if f.startswith('review') or f == 'library-exception-text':
                rev.setdefault((r['group'], normalise(f)), []).append(r)
    print('\nflagged for review (not counted as failures):', file=out)
    for key in sorted(rev):
        rs = rev[key]
        flag = next(f for f in rs[0]['flags'] if normalise(f) == key[1])
        print('[g%d] x%d %s | e.g. %s (%s)' % (key[0], len(rs), flag[:160], rs[0]['desc'][:70], rs[0]['id']), file=out)


def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--binary', default=BIN)
    ap.add_argument('--groups', default='all', help='comma list of group numbers, or all')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--summary', action='store_true', help='only print the table from results.jsonl')
    ap.add_argument('--limit', type=int, default=0, help='run only the first N cases of each group (smoke test)')
    args = ap.parse_args()
    sys.stdout.reconfigure(errors='backslashreplace', line_buffering=True)
    if args.summary:
        rows = [json.loads(l) for l in open(RESULTS)]
        summarise(rows)
        list_findings(rows)
        return
    BIN = os.path.abspath(args.binary)
    groups = sorted(GENERATORS) if args.groups == 'all' else [int(g) for g in args.groups.split(',')]
    os.makedirs(ROOT, exist_ok=True)
    for name in ('config', 'data', 'prompt_templates'):
        link = os.path.join(ROOT, name)
        if not os.path.islink(link):
            os.symlink(os.path.join(SRC, name), link)
    ensure_models()
    load_schema()
    fp = cache_fingerprint()

    def on_signal(sig, frame):
        cleanup_all()
        sys.exit(1)
    signal.signal(signal.SIGTERM, on_signal)
    new_rows = []
    partial = RESULTS + '.partial'
    pf = open(partial, 'w')
    t_all = time.monotonic()
    for g in groups:
        t0 = time.monotonic()
        rng = random.Random(SEED * 100 + g)
        gdir = os.path.join(WORK, 'g%d' % g)
        if os.path.exists(gdir):
            subprocess.run(['chmod', '-R', 'u+rwX', gdir])
            shutil.rmtree(gdir)
        os.makedirs(gdir)
        cases = GENERATORS[g](rng)
        if g == 3:
            prepare_group3()
        if args.limit:
            cases = cases[:args.limit]
        for k, c in enumerate(cases):
            c.id = 'g%d-%04d' % (g, k)
        print('group %d (%s): %d cases' % (g, GROUP_NAMES[g], len(cases)))
        jobs = 1 if g in SEQUENTIAL else args.jobs
        done = 0
        with cf.ThreadPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(execute, c): c for c in cases}
            for fu in cf.as_completed(futs):
                c = futs[fu]
                try:
                    row = fu.result()
                except Exception as e:
                    row = {'id': c.id, 'group': g, 'desc': c.desc, 'kind': c.kind, 'cmd': c.cmdline(), 'expect': c.expect,
                           'why': c.why, 'rc': None, 'duration': None, 'timeout': c.timeout, 'class': 'ok',
                           'reason': '', 'flags': ['review: probe error %r' % e], 'stdout_tail': '', 'stderr_tail': ''}
                new_rows.append(row)
                pf.write(json.dumps(row) + '\n')
                pf.flush()
                done += 1
                if row['class'] != 'ok':
                    print('  %s %-11s %s | %s' % (row['id'], row['class'], row['desc'][:70], row['reason'][:100]))
                if done % 50 == 0:
                    print('  ... %d/%d (%.0f s)' % (done, len(cases), time.monotonic() - t0))
        if g == 9 and INSP.p is not None:
            INSP.stop()
        print('group %d done in %.0f s' % (g, time.monotonic() - t0))
    pf.close()
    old = []
    if os.path.exists(RESULTS):
        old = [json.loads(l) for l in open(RESULTS) if l.strip()]
    rows = [r for r in old if r['group'] not in groups] + sorted(new_rows, key=lambda r: (r['group'], r['id']))
    with open(RESULTS, 'w') as f:
        for r in sorted(rows, key=lambda r: (r['group'], r['id'])):
            f.write(json.dumps(r) + '\n')
    os.unlink(partial)
    if cache_fingerprint() != fp:
        print('WARNING: the cached tiny models changed during the run')
    print('\nall groups done in %.0f s\n' % (time.monotonic() - t_all))
    summarise(sorted(rows, key=lambda r: (r['group'], r['id'])))
    list_findings(sorted(rows, key=lambda r: (r['group'], r['id'])))
    cleanup_all()


if __name__ == '__main__':
    main()
