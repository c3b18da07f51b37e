#!/bin/sh
# initqueue timeout hook of the cloner installer (dracut): no interface got a DHCP answer
# while init waited (2/3 of rd.retry). Stop waiting for the network, so init goes on to
# the deploy loop (cloner-deploy.sh), which says so and retries DHCP after a back-off,
# instead of init's "Could not boot." and an emergency shell. Sourced by init: no exit.
if [ "$(getarg boot=)" = cloner ]; then
    rm -f -- "$hookdir"/initqueue/finished/wait-network.sh "$hookdir"/initqueue/finished/wait-*.sh
fi
