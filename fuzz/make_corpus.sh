#!/usr/bin/env bash
# Regenerates the seed corpora under fuzz/corpus/<harness>/: small valid files
# and slightly broken ones. Deterministic (gzip -n: no name, no timestamp), so
# rerunning it leaves the committed files unchanged.
set -eu
cd "$(dirname "$0")"
C=corpus
rm -rf "$C"
mkdir -p "$C"/{json,safetensors,checkpoint,idx,idx_gz,csv,device,cli}

# put DIR NAME PRINTF-FORMAT: the bytes printf makes of the format
put() { printf "$3" >"$C/$1/$2"; }

# Eight-byte little-endian length as printf escapes.
le64() {
    local n=$1 s="" k
    for k in 0 1 2 3 4 5 6 7; do s+=$(printf '\\x%02x' $(((n >> (8 * k)) & 255))); done
    printf '%s' "$s"
}

# st DIR NAME JSON DATA-ESCAPES: a safetensors file (header length, header, data)
st() {
    local hdr=$3
    printf "$(le64 ${#hdr})" >"$C/$1/$2"
    printf '%s' "$hdr" >>"$C/$1/$2"
    printf "$4" >>"$C/$1/$2"
}

# ---- json: the safetensors header grammar and JSON corner cases
put json empty_object '{}'
put json header '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}'
put json nested '[1,[2,[3,[4,{"a":[true,false,null]}]]]]'
put json numbers '[0,-0,1.5e3,-2E-2,9223372036854775807,9223372036854775808,1e400,0.000001]'
put json escapes '"a\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\\u00e9\\u20ac\\ud83d\\ude00"'
put json nul_escape '{"a\\u0000b":"x\\u0000y"}'
put json ws ' \t\r\n{ "k" : [ 1 , 2 ] } \n'
put json bad_surrogate '"\\ud800x"'
put json lone_low '"\\udc00"'
put json trailing_comma '{"a":1,}'
put json unterminated '{"a":"b'
put json bad_number '[01, 1., .5, -]'
put json deep '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]'
put json control_char '"a\tb"'
put json literals '[true,false,null,tru,nul]'
put json dup_keys '{"a":1,"a":2}'
put json utf8 '"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff"'

# ---- safetensors: each dtype, metadata, zero-size, and broken variants
f32_4='\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40' # 1 2 3 4
st safetensors f32 '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}' "$f32_4"
st safetensors meta '{"__metadata__":{"format":"pt","epoch":"3"},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\x00\x00\x80\x3f'
st safetensors two '{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2],"data_offsets":[8,12]}}' '\x01\x00\x00\x00\xff\xff\xff\xff\x00\x3c\x00\xc0'
st safetensors bf16 '{"x":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}' '\x80\x3f\x00\xc0'
st safetensors f64 '{"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}}' '\x00\x00\x00\x00\x00\x00\xf0\x3f'
st safetensors i64 '{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}' '\x05\x00\x00\x00\x00\x00\x00\x00'
st safetensors i64_big '{"x":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}' '\x00\x00\x00\x00\x01\x00\x00\x00'
st safetensors ints '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"I8","shape":[2],"data_offsets":[2,4]},"c":{"dtype":"I16","shape":[1],"data_offsets":[4,6]},"d":{"dtype":"U16","shape":[1],"data_offsets":[6,8]},"e":{"dtype":"U32","shape":[1],"data_offsets":[8,12]},"f":{"dtype":"BOOL","shape":[1],"data_offsets":[12,13]}}' '\x01\xff\x80\x7f\x00\x80\xff\xff\xff\xff\xff\x7f\x01'
st safetensors u32_big '{"e":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}}' '\xff\xff\xff\xff'
st safetensors scalar '{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}' '\x00\x00\x80\x3f'
st safetensors zero_size '{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}' ''
st safetensors empty '{}' ''
st safetensors padded '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}      ' '\x00\x00\x80\x3f'
st safetensors unsupported '{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}' '\x00'
st safetensors overlap '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' '\x00\x00\x80\x3f'
st safetensors gap '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' '\x00\x00\x80\x3f\x00\x00\x80\x3f'
st safetensors past_end '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' '\x00\x00\x80\x3f'
st safetensors span_mismatch '{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}' '\x00\x00\x80\x3f\x00\x00\x80\x3f'
st safetensors huge_shape '{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}' ''
st safetensors zero_then_huge '{"a":{"dtype":"F32","shape":[0,4294967295,4294967295],"data_offsets":[0,0]}}' ''
st safetensors nine_dims '{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}' '\x00'
st safetensors bad_meta '{"__metadata__":{"k":1}}' ''
st safetensors nul_name '{"a\u0000b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}' '\x00'
printf "$(le64 1000)"'{}' >"$C/safetensors/truncated"
printf '\x02\x00\x00\x00' >"$C/safetensors/short"

# ---- checkpoint: what ag_checkpoint_save writes for Linear(3, 2) + Adam, and broken metadata
w6='\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40\x00\x00\xa0\x40\x00\x00\xc0\x40'
b2='\x00\x00\x80\x3f\x00\x00\x00\x40'
ckpt() { # NAME METADATA-JSON [EXTRA-ENTRY-JSON EXTRA-DATA]
    local opt='"optimizer.state.0.exp_avg":{"dtype":"F32","shape":[2,3],"data_offsets":[32,56]},"optimizer.state.0.exp_avg_sq":{"dtype":"F32","shape":[2,3],"data_offsets":[56,80]},"optimizer.state.1.exp_avg":{"dtype":"F32","shape":[2],"data_offsets":[80,88]},"optimizer.state.1.exp_avg_sq":{"dtype":"F32","shape":[2],"data_offsets":[88,96]}'
    st checkpoint "$1" "{\"__metadata__\":$2,\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]},$opt${3:-}}" "$w6$b2$w6$w6$b2$b2${4:-}"
}
ckpt adam '{"format":"pt","epoch":"4","optimizer.kind":"Adam","optimizer.lr":"0.001","optimizer.steps":"10","optimizer.param_steps":"10,10"}'
ckpt no_epoch '{"format":"pt","optimizer.kind":"Adam","optimizer.lr":"0.5","optimizer.steps":"0","optimizer.param_steps":"0,0"}'
ckpt wrong_kind '{"optimizer.kind":"SGD","optimizer.lr":"0.1","optimizer.steps":"1","optimizer.param_steps":"1,1"}'
ckpt bad_lr '{"optimizer.kind":"Adam","optimizer.lr":"-1","optimizer.steps":"1","optimizer.param_steps":"1,1"}'
ckpt short_steps '{"optimizer.kind":"Adam","optimizer.lr":"0.1","optimizer.steps":"1","optimizer.param_steps":"1"}'
ckpt big_steps '{"optimizer.kind":"Adam","optimizer.lr":"1e30","optimizer.steps":"9223372036854775807","optimizer.param_steps":"9223372036854775807,9223372036854775806"}'
ckpt bad_epoch '{"epoch":"x","optimizer.kind":"Adam","optimizer.lr":"0.1","optimizer.steps":"1","optimizer.param_steps":"1,1"}'
st checkpoint module_only "{\"weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}" "$w6$b2"
st checkpoint wrong_shape "{\"weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}" "$w6$b2"
ckpt stray_state '{"optimizer.kind":"Adam","optimizer.lr":"0.1","optimizer.steps":"1","optimizer.param_steps":"1,1"}' \
    ',"optimizer.state.7.exp_avg":{"dtype":"F32","shape":[1],"data_offsets":[96,100]}' '\x00\x00\x00\x00'
ckpt extra_tensor '{"optimizer.kind":"Adam","optimizer.lr":"0.1","optimizer.steps":"1","optimizer.param_steps":"1,1"}' \
    ',"other":{"dtype":"F32","shape":[1],"data_offsets":[96,100]}' '\x00\x00\x00\x00'

# ---- idx: each type code, plain; the same files gzipped for fuzz_idx
put idx images_u8 '\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00\x02\x00\x10\x20\x30\x40\x80\xc0\xff'
put idx labels_u8 '\x00\x00\x08\x01\x00\x00\x00\x04\x00\x01\x09\x05'
put idx i8 '\x00\x00\x09\x01\x00\x00\x00\x02\x80\x7f'
put idx short '\x00\x00\x0b\x02\x00\x00\x00\x01\x00\x00\x00\x02\x80\x00\x7f\xff'
put idx int '\x00\x00\x0c\x01\x00\x00\x00\x02\x80\x00\x00\x00\x7f\xff\xff\xff'
put idx float '\x00\x00\x0d\x01\x00\x00\x00\x02\x3f\x80\x00\x00\xc0\x00\x00\x00'
put idx double '\x00\x00\x0e\x01\x00\x00\x00\x01\x3f\xf0\x00\x00\x00\x00\x00\x00'
put idx double_big '\x00\x00\x0e\x01\x00\x00\x00\x01\x7f\xef\xff\xff\xff\xff\xff\xff'
put idx zero_dim '\x00\x00\x08\x02\x00\x00\x00\x00\x00\x00\x00\x05'
put idx truncated '\x00\x00\x08\x02\x00\x00\x00\x10\x00\x00\x00\x10\x00\x01\x02'
put idx extra '\x00\x00\x08\x01\x00\x00\x00\x01\x00\x01'
put idx bad_magic '\x01\x00\x08\x01\x00\x00\x00\x01\x00'
put idx bad_type '\x00\x00\x0a\x01\x00\x00\x00\x01\x00'
put idx nine_dims '\x00\x00\x08\x09'
put idx huge '\x00\x00\x0e\x02\x80\x00\x00\x00\x80\x00\x00\x00'
put idx zero_then_huge '\x00\x00\x08\x03\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff' # found by fuzz_idx
for f in images_u8 labels_u8 float truncated extra; do
    cp "$C/idx/$f" "$C/idx_gz/$f"
    gzip -n -9 -c "$C/idx/$f" >"$C/idx/$f.gz"
done
gzip -n -9 -c "$C/idx/labels_u8" | head -c 20 >"$C/idx/cut.gz"
gzip -n -9 -c "$C/idx/labels_u8" "$C/idx/labels_u8" >"$C/idx/two_members.gz"

# ---- csv
put csv plain '1,2,3\n4,5,6\n'
put csv header 'a,b\n1.5,-2e3\n\n3,4\n'
put csv crlf 'x,y\r\n1,2\r\n3,4\r\n'
put csv spaces ' 1 ,\t2\n 3, 4 \n'
put csv no_newline '1,2\n3,4'
put csv specials 'nan,inf,-inf,0x1p3\n1e-50,1e38,-0,+1\n'
put csv ragged '1,2\n3\n'
put csv empty_field '1,,3\n'
put csv not_number '1,abc\n'
put csv overflow '1e39,1\n'
put csv blank_only '\n \n\t\n'
put csv long_field '1,12345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890\n'

# ---- device names (AG_DEVICE)
for n in cpu cpu:0 cpu:1 cpu:-1 cpu: cpu:x cpu:00 c :0 opencl vulkan:0 cpu:99999999999999999999 \
         'cpu:0 ' ' cpu' CPU; do
    printf '%s' "$n" >"$C/device/$(printf '%s' "$n" | od -An -tx1 | tr -d ' \n')"
done
printf '' >"$C/device/empty"
printf 'cpu\0:1' >"$C/device/embedded_nul"
printf '%0100d' 0 | tr 0 c >"$C/device/long"

# ---- command lines (fuzz_cli): arguments after "anygrad", NUL-separated; after a
# word "\x1e", a resumed checkpoint's settings as K=V
cli() { # NAME WORD...
    local name=$1
    shift
    local IFS=
    printf '%s\0' "$@" | head -c -1 >"$C/cli/$name"
}
cli help --help
cli version --version
cli unknown bogus
cli train_defaults train
cli train_full train --model cnn --optimizer sgd --epochs 3 --batch 64 --lr 0.01 --momentum 0.9 \
    --weight-decay 0.0005 --schedule step --warmup 100 --step-size 1 --gamma 0.5 --clip 5 \
    --device cpu --seed 42 --data /tmp/d --limit 1000 --val-frac 0.2 --save a.st --log a.csv \
    --log-every 5 --plot a.svg
cli train_adamw train --optimizer adamw --schedule cosine --lr 1e-12
cli train_bad_value train --epochs -1
cli train_no_value train --optimizer
cli train_momentum_adam train --optimizer adam --momentum 0.5
cli train_seed_max train --seed 9223372036854775807
cli train_help_late train --epochs 2 --help
cli train_empty train --save ''
cli resume train --resume a.st "$(printf '\x1e')" model=cnn optimizer=rmsprop epochs=4 lr=0.002 \
    momentum=0.1 schedule=cosine seed=3 log-every=7
cli resume_bad train --resume a.st --epochs 5 "$(printf '\x1e')" batch=0 lr=x
cli resume_empty train --resume a.st "$(printf '\x1e')" model=
cli eval eval a.st --model mlp --data /tmp/d --device cpu:0
cli eval_none eval
cli eval_dash eval -x
cli eval_bad_model eval a.st --model rnn
cli plot plot a.csv b.svg --title 'a title'
cli plot_one plot a.csv
cli devices devices -v --calibrate --json
cli devices_bad devices --bogus
cli check check --device cpu --op relu --quick --json r.json --docs ops.md --self-compare --no-model -v
cli check_list check --list --bogus
cli check_no_value check --device
