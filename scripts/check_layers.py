#!/usr/bin/env python3
"""Fails when a lower layer calls into a higher one (docs/architecture.md draws
the layers). check_layers.py BUILD_DIR

Reads BUILD_DIR/compile_commands.json for each object's source, `nm` for the
symbols each object defines and needs, and reports every undefined symbol of an
object that is defined in an object of a higher layer. Calls, not includes, are
what ties layers: a header may declare what a lower layer provides."""
import json
import os
import subprocess
import sys

# first match wins; paths relative to the source root
LAYERS = [
    ('base', ['src/error.c', 'src/fault.c', 'src/philox.c', 'src/dtype.c']),
    ('backends', ['backends/']),
    ('core', ['src/tensor.c', 'src/views.c', 'src/scope.c', 'src/autograd.c', 'src/device.c']),
    ('ops', ['src/ops_', 'src/loss.c', 'src/rng.c', 'src/calibrate.c']),
    ('nn-optim-io', ['src/nn', 'src/optim', 'src/init.c', 'src/checkpoint.c', 'src/io_',
                     'src/data.c', 'src/json.c']),
    ('conformance', ['tests/ref.c', 'tests/harness.c', 'tests/optable.c', 'tests/matrix.c']),
    ('cli', ['src/cli/']),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
# Known upward calls, each with the reason it stands; a new one fails.
ALLOWED = {
    # the probe breaks ties between devices by timing a GEMM through the public ops
    ('src/device.c', 'ag_device_calibrate'), ('src/device.c', 'ag__calibration_get'),
    # backward accumulates gradients (a + b) and reduces broadcast gradients with ops
    ('src/autograd.c', 'ag_add'), ('src/views.c', 'ag__reduce_to'),
}


def layer_of(rel):
    for name, prefixes in LAYERS:
        if any(rel.startswith(p) for p in prefixes):
            return name
    return None


def symbols(obj):
    out = subprocess.run(['nm', '-P', obj], capture_output=True, text=True, check=True).stdout
    defined, needed = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == 'U':
            needed.add(name)
        elif kind in 'TDBRCVW':
            defined.add(name)
    return defined, needed


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else 'build'
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(build, 'compile_commands.json'), encoding='utf-8') as f:
        cmds = json.load(f)
    objs = {}  # object path -> (source rel, layer)
    for c in cmds:
        src = os.path.relpath(os.path.normpath(os.path.join(c['directory'], c['file'])), root)
        layer = layer_of(src)
        if layer is None:
            continue
        obj = os.path.join(c['directory'], c['output'])
        if os.path.exists(obj):
            objs[obj] = (src, layer)
    if len(objs) < 50:
        sys.exit('check_layers.py: found only %d objects in %s; build first' % (len(objs), build))
    owner = {}
    info = {}
    for obj, (src, layer) in objs.items():
        d, n = symbols(obj)
        info[obj] = n
        for s in d:
            owner.setdefault(s, (src, layer))
    bad = []
    for obj, (src, layer) in sorted(objs.items(), key=lambda kv: kv[1][0]):
        for s in sorted(info[obj]):
            if s in owner and RANK[owner[s][1]] > RANK[layer] and (src, s) not in ALLOWED:
                bad.append('%s (%s) calls %s of %s (%s)' % (src, layer, s, owner[s][0], owner[s][1]))
    for b in bad:
        print('upward call: ' + b)
    print('check_layers: %d objects, %d upward calls' % (len(objs), len(bad)))
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
