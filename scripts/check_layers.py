#!/usr/bin/env python3
"""Fails when a lower layer includes or calls into a higher one
(docs/architecture.md draws the layers). check_layers.py BUILD_DIR

Includes: every `#include "..."` of a source file in a layer folder is resolved as
the compiler would (its own folder, then the build's include folders) and must
not name a file of a higher layer. Calls: BUILD_DIR/compile_commands.json gives
each object's source, `nm` the symbols each object defines and needs; an
undefined symbol defined by an object of a higher layer is an upward call."""
import json
import os
import re
import subprocess
import sys

# One folder (or more) a layer, lowest first; first match wins; paths relative to
# the source root.
LAYERS = [
    ('tables', ['include/', 'src/ops/unary_table.h', 'src/ops/binary_table.h',
                'src/ops/table_common.h']),
    ('base', ['src/base/']),
    ('backends', ['backends/']),
    ('core', ['src/core/']),
    ('ops', ['src/ops/']),
    ('nn-optim-io', ['src/nn/', 'src/io/']),
    ('dist', ['src/dist/']),
    ('conformance', ['conformance/']),
    ('cli', ['cli/']),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
# Known upward calls, each with the reason it stands; a new one fails.
ALLOWED = {
    # the probe breaks ties between devices by timing a GEMM through the public ops
    ('src/core/device.c', 'ag_device_calibrate'), ('src/core/device.c', 'ag__calibration_get'),
    # backward accumulates gradients (a + b) and reduces broadcast gradients with ops
    ('src/core/autograd.c', 'ag_add'), ('src/core/views.c', 'ag__reduce_to'),
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


# the include folders of meson.build's `inc`, and conformance/ for its users
INCLUDE_DIRS = ['include', 'src', 'src/base', 'src/core', 'src/nn', 'src/io', 'src/dist', 'backends', 'backends/common',
                'backends/opencl', 'backends/vulkan', 'conformance']
SOURCE_EXT = ('.c', '.h', '.cl', '.glsl', '.comp')


def upward_includes(root):
    files = subprocess.run(['git', 'ls-files'], cwd=root, capture_output=True, text=True,
                           check=True).stdout.split()
    bad, n = [], 0
    for rel in files:
        layer = layer_of(rel)
        if layer is None or not rel.endswith(SOURCE_EXT):
            continue
        n += 1
        with open(os.path.join(root, rel), encoding='utf-8') as f:
            text = f.read()
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
            for d in [os.path.dirname(rel)] + INCLUDE_DIRS:
                target = os.path.normpath(os.path.join(d, name))
                if os.path.exists(os.path.join(root, target)):
                    tl = layer_of(target)
                    if tl is not None and RANK[tl] > RANK[layer]:
                        bad.append('%s (%s) includes %s (%s)' % (rel, layer, target, tl))
                    break
    return bad, n


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
    inc_bad, nfiles = upward_includes(root)
    for b in inc_bad:
        print('upward include: ' + b)
    print('check_layers: %d objects, %d upward calls; %d sources, %d upward includes'
          % (len(objs), len(bad), nfiles, len(inc_bad)))
    sys.exit(1 if bad or inc_bad else 0)


if __name__ == '__main__':
    main()
