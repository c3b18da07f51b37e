#!/bin/sh
# cmdline hook of the cloner installer (dracut): with boot=cloner there is no root to find;
# the deploy loop (cloner-deploy.sh, pre-mount) takes over and never hands over to a root.
# Each dhclient (network-legacy's ifup) gives up after cloner.dhcp_timeout seconds (default
# 15), so a node with many NICs does not wait a minute on each silent one.
if [ "$(getarg boot=)" = cloner ]; then
    root=cloner
    rootok=1
    export root rootok
    cloner_timeout=$(getarg cloner.dhcp_timeout=)
    case "$cloner_timeout" in
        '' | *[!0-9]*) cloner_timeout=15 ;;
    esac
    echo "timeout $cloner_timeout;" >> /etc/dhclient.conf
    unset cloner_timeout
fi
