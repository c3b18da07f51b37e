#!/usr/bin/env bash
# Installs Cloner system-wide from this checkout (scripts/setup.sh runs it after npm install):
# builds the bundles (dist/, scripts/build.ts), links the launchers bin/cloner, bin/cloner-server
# and bin/cloner-agent into PREFIX/bin, the systemd unit into PREFIX/lib/systemd/system (not
# enabled), the man pages cloner(1), cloner-server(8) and cloner-agent(8) (docs/man; cloner.1
# is generated from the CLI by scripts/docs.ts) into PREFIX/share/man, the bash completion of
# cloner into PREFIX/share/bash-completion/completions (where bash-completion looks, through
# XDG_DATA_DIRS) and the README into PREFIX/share/doc/cloner. PREFIX is /usr/local
# (CLONER_PREFIX).
#
# Why links to small launchers and not `npm install -g .`: the checkout carries its own Node 24
# (the npm package `node`) and native addons built for it; npm -g would run under whatever
# Node and npm are on PATH (here v20) and link through npm's global prefix, while a launcher
# that execs node_modules/node/bin/node on dist/ is one process with a known runtime. To
# update: git pull, then scripts/setup.sh again (it rebuilds dist/).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${CLONER_PREFIX:-/usr/local}
"$root/node_modules/node/bin/node" "$root/scripts/build.ts"
mkdir -p "$prefix/bin" "$prefix/lib/systemd/system" "$prefix/share/doc/cloner" "$prefix/share/man/man1" "$prefix/share/man/man8" "$prefix/share/bash-completion/completions"
for prog in cloner cloner-server cloner-agent; do
  ln -sfn "$root/bin/$prog" "$prefix/bin/$prog"
done
sed "s|/usr/local/bin/|$prefix/bin/|g; s|/usr/local/share/|$prefix/share/|g" "$root/contrib/cloner-server.service" >"$prefix/lib/systemd/system/cloner-server.service"
ln -sfn "$root/README.md" "$prefix/share/doc/cloner/README.md"
ln -sfn "$root/docs/man/cloner.1" "$prefix/share/man/man1/cloner.1"
for page in cloner-server cloner-agent; do ln -sfn "$root/docs/man/$page.8" "$prefix/share/man/man8/$page.8"; done
ln -sfn "$root/contrib/bash-completion/cloner" "$prefix/share/bash-completion/completions/cloner"
echo "install: cloner, cloner-server, cloner-agent in $prefix/bin -> $root/bin; unit $prefix/lib/systemd/system/cloner-server.service; man pages in $prefix/share/man; bash completion in $prefix/share/bash-completion/completions"
case ":$PATH:" in *":$prefix/bin:"*) ;; *) echo "install: note: $prefix/bin is not on PATH" ;; esac
