#!/usr/bin/env node
process.stderr.write('cloner-agent: not yet (it arrives with the deploy issue)\n');
process.exit(2);
