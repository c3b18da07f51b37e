#!/bin/sh
# cmdline hook of the cloner installer (dracut): with boot=cloner there is no root to find;
# the deploy loop (cloner-deploy.sh, pre-mount) takes over and never hands over to a root.
if [ "$(getarg boot=)" = cloner ]; then
    root=cloner
    rootok=1
    export root rootok
fi
