#!/usr/bin/env node
process.stderr.write('cloner-server: not yet (it arrives with the server issue); use `cloner --store DIR` commands meanwhile\n');
process.exit(2);
