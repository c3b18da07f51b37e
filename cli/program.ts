/**
 * The `cloner` command's definitions: one cac instance with every sub-command (one file
 * each under commands/), its help and version. cli/main.ts parses and runs it;
 * scripts/docs.ts writes the man page cloner(1) and the bash completion from the same
 * definitions, so neither can drift from the flags the program takes.
 */
import cac, { type CAC } from 'cac';
import { CLONER_VERSION } from '../core/version.ts';
import { register as biossettings } from './commands/biossettings.ts';
import { register as biossettingsUpload } from './commands/biossettings-upload.ts';
import { register as config } from './commands/config.ts';
import { register as demo } from './commands/demo.ts';
import { register as disklayout } from './commands/disklayout.ts';
import { register as disklayoutApply } from './commands/disklayout-apply.ts';
import { register as disklayoutDelete } from './commands/disklayout-delete.ts';
import { register as disklayoutRollback } from './commands/disklayout-rollback.ts';
import { register as disklayoutUpload } from './commands/disklayout-upload.ts';
import { register as fixEfiboot } from './commands/fix-efiboot.ts';
import { register as gc } from './commands/gc.ts';
import { register as identify } from './commands/identify.ts';
import { register as imageDelete } from './commands/image-delete.ts';
import { register as imageDetails } from './commands/image-details.ts';
import { register as imageDiff } from './commands/image-diff.ts';
import { register as imageExport } from './commands/image-export.ts';
import { register as imageList } from './commands/image-list.ts';
import { register as imageRollback } from './commands/image-rollback.ts';
import { register as makeInstaller } from './commands/make-installer.ts';
import { register as multicastImage } from './commands/multicast-image.ts';
import { register as multicastStatus } from './commands/multicast-status.ts';
import { register as netboot } from './commands/netboot.ts';
import { register as newImage } from './commands/new-image.ts';
import { register as nodes } from './commands/nodes.ts';
import { register as power } from './commands/power.ts';
import { register as repairIndex } from './commands/repair-index.ts';
import { register as script } from './commands/script.ts';
import { register as status } from './commands/status.ts';
import { register as updateDisklayout } from './commands/update-disklayout.ts';
import { register as updateFilesystem } from './commands/update-filesystem.ts';
import { register as updateOptions } from './commands/update-options.ts';
import { register as verify } from './commands/verify.ts';

export function clonerCli(): CAC {
  const cli = cac('cloner');
  for (const register of [newImage, updateFilesystem, updateDisklayout, updateOptions, config, imageList, imageDetails, imageDiff, imageExport, imageRollback, imageDelete, disklayout, disklayoutUpload, disklayoutApply, disklayoutRollback, disklayoutDelete, script, biossettings, biossettingsUpload, nodes, netboot, power, status, multicastStatus, multicastImage, identify, fixEfiboot, makeInstaller, verify, gc, repairIndex, demo]) register(cli);
  cli.help();
  cli.version(CLONER_VERSION);
  return cli;
}
