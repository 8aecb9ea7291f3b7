#!/usr/bin/env bash
# Macro cost: a contract of 100 operations under #[nexus_service], against the same 100 methods
# under #[tarpc::service], in the same run.
#
# Generates a scratch workspace in target/macro-cost/ (not committed) with four crates:
#   nexus100      the contract under #[nexus_service]
#   nexus100-raw  the same trait without the attribute (baseline of the expansion)
#   tarpc100      the same 100 methods under #[tarpc::service] (features serde1 + tokio1)
#   tarpc100-raw  the same trait without the attribute
# All four share the input and output types (serde + schemars derives), so they differ only by
# the macro. It measures:
#   - `cargo check` time of each macro crate alone (dependencies prebuilt; the source is touched
#     before each run; runs alternate between the two; the median of RUNS runs);
#   - lines of expanded code per operation: (lines of `-Zunpretty=expanded` of the crate) minus
#     (the same for its -raw twin), divided by 100 (RUSTC_BOOTSTRAP=1 allows -Z on stable).
#
# Usage: bash benches/scripts/macro-cost.sh        Environment: RUNS (default 7), OPS (default 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/target/macro-cost
runs=${RUNS:-7}
ops=${OPS:-100}
mkdir -p "$dir"

types() {
    cat <<'EOF'
use serde::{Deserialize, Serialize};

/// An input.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Input {
    /// An id.
    pub id: String,
    /// An amount.
    pub amount: f64,
}

/// An output.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Output {
    /// A verdict.
    pub ok: bool,
}
EOF
}

# gen_crate NAME KIND(nexus|tarpc) ATTRIBUTE(yes|no)
gen_crate() {
    local name=$1 kind=$2 attr=$3 crate_dir=$dir/$1
    mkdir -p "$crate_dir/src"
    {
        echo "[package]"
        echo "name = \"$name\""
        echo 'version = "0.1.0"'
        echo 'edition = "2024"'
        echo 'publish = false'
        echo
        echo '[dependencies]'
        echo 'serde = { version = "1", features = ["derive"] }'
        echo 'schemars = "1.2"'
        if [ "$kind" = nexus ]; then
            echo "nexus-rpc-runtime = { path = \"$root/nexus-runtime\", default-features = false }"
        else
            echo 'tarpc = { version = "0.38", features = ["serde1", "tokio1"] }'
        fi
    } > "$crate_dir/Cargo.toml"
    {
        echo '//! A generated contract of many operations (macro-cost benchmark).'
        echo '#![allow(missing_docs, async_fn_in_trait)]'
        types
        echo
        if [ "$kind" = nexus ]; then
            echo 'use nexus_runtime::{OperationContext, OperationResult};'
            [ "$attr" = yes ] && echo '#[nexus_runtime::nexus_service(name = "bench.v1")]'
            echo '/// The service.'
            echo 'pub trait Bench {'
            for i in $(seq 0 $((ops - 1))); do
                echo "    /// Operation $i."
                echo "    async fn op$i(&self, ctx: OperationContext, input: Input) -> OperationResult<Output>;"
            done
            echo '}'
        else
            [ "$attr" = yes ] && echo '#[tarpc::service]'
            echo '/// The service.'
            echo 'pub trait Bench {'
            for i in $(seq 0 $((ops - 1))); do
                echo "    /// Operation $i."
                if [ "$attr" = yes ]; then
                    echo "    async fn op$i(input: Input) -> Output;"
                else
                    # tarpc's methods take no receiver; a plain trait method needs one.
                    echo "    async fn op$i(&self, input: Input) -> Output;"
                fi
            done
            echo '}'
        fi
    } > "$crate_dir/src/lib.rs"
}

cat > "$dir/Cargo.toml" <<'EOF'
[workspace]
resolver = "3"
members = ["nexus100", "nexus100-raw", "tarpc100", "tarpc100-raw"]
EOF
gen_crate nexus100 nexus yes
gen_crate nexus100-raw nexus no
gen_crate tarpc100 tarpc yes
gen_crate tarpc100-raw tarpc no
[ -f "$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$dir/Cargo.lock"

cd "$dir"
echo "==> building dependencies" >&2
# Each crate on its own: `-p` resolves features per crate, so a workspace-wide check would not
# prebuild what a `-p` check uses. Then one discarded run each.
for crate in nexus100 nexus100-raw tarpc100 tarpc100-raw nexus100 tarpc100; do
    touch "$crate/src/lib.rs"
    cargo check --quiet -p "$crate" >&2
done

now_ms() { date +%s%3N; }
declare -A times
for run in $(seq 1 "$runs"); do
    if [ $((run % 2)) = 1 ]; then
        order="nexus100 tarpc100 nexus100-raw tarpc100-raw"
    else
        order="tarpc100 nexus100 tarpc100-raw nexus100-raw"
    fi
    for crate in $order; do
        touch "$crate/src/lib.rs"
        start=$(now_ms)
        cargo check --quiet -p "$crate" >&2
        end=$(now_ms)
        times[$crate]="${times[$crate]:-} $((end - start))"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

expanded_lines() {
    RUSTC_BOOTSTRAP=1 cargo rustc --quiet -p "$1" --profile=check -- -Zunpretty=expanded 2>/dev/null | wc -l
}

n_med=$(echo "${times[nexus100]}" | median)
t_med=$(echo "${times[tarpc100]}" | median)
nr_med=$(echo "${times[nexus100-raw]}" | median)
tr_med=$(echo "${times[tarpc100-raw]}" | median)
n_exp=$(expanded_lines nexus100); n_raw=$(expanded_lines nexus100-raw)
t_exp=$(expanded_lines tarpc100); t_raw=$(expanded_lines tarpc100-raw)
n_src=$(wc -l < nexus100/src/lib.rs); t_src=$(wc -l < tarpc100/src/lib.rs)

echo
echo "Macro cost: a contract of $ops operations (\`cargo check\` of the crate alone, dependencies prebuilt, source touched before each run, median of $runs runs, alternating)"
echo
echo "| macro | cargo check (ms, median) | runs (ms) | same trait without the macro (ms) | source lines | expanded lines | expanded lines without the macro | lines per operation from the macro |"
echo "|---|---:|---|---:|---:|---:|---:|---:|"
echo "| \`#[nexus_service]\` | $n_med |${times[nexus100]} | $nr_med | $n_src | $n_exp | $n_raw | $(( (n_exp - n_raw) / ops )) |"
echo "| \`#[tarpc::service]\` | $t_med |${times[tarpc100]} | $tr_med | $t_src | $t_exp | $t_raw | $(( (t_exp - t_raw) / ops )) |"
echo
awk -v n="$n_med" -v t="$t_med" 'BEGIN { printf "check time ratio nexus/tarpc: %.2f\n", n / t }'
