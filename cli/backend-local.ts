/** The CLI's backend on a local store directory: the same core functions the server's routes call. */
import { deleteLayoutVersion, listLayouts, loadLayout, layoutExists, rollbackLayout, saveLayout } from '../core/layout/store.ts';
import { LiveDeploys } from '../core/nodes/deploy.ts';
import type { LocalStore } from '../core/store/local.ts';
import { commitRevision, deleteImage, getImage, imageUsage, listImages } from '../core/tree/images.ts';
import { lastMaintenance, runGc, runVerify } from '../core/tree/maintenance.ts';
import { addToGroup, removeFromGroup } from '../core/nodes/groups.ts';
import { nodeHistory } from '../core/nodes/history.ts';
import { getAttachment, listAttachments, putAttachment } from '../core/tree/attachments.ts';
import { powerNode } from '../core/nodes/power.ts';
import { changeNode, getNode, NodeNotFoundError, identifyMac, identifyNode, listNodes, publicView, removeNode } from '../core/nodes/registry.ts';
import type { Backend } from './backend.ts';

export function localBackend(store: LocalStore, dir: string): Backend {
  return {
    where: `store ${dir}`,
    chunks: store,
    chunker: store.config.chunker,
    getImage: (name) => getImage(store, name),
    listImages: () => listImages(store),
    usage: () => imageUsage(store),
    commitRevision: (name, input, create) => commitRevision(store, name, input, { create }),
    layoutExists: (name) => layoutExists(store, name),
    loadLayout: (name, version) => loadLayout(store, name, version),
    saveLayout: (name, layout) => saveLayout(store, name, layout),
    listLayouts: () => listLayouts(store),
    deleteLayoutVersion: (name, version) => deleteLayoutVersion(store, name, version),
    rollbackLayout: (name, version) => rollbackLayout(store, name, version),
    deleteImage: (name) => deleteImage(store, name),
    putAttachment: (image, kind, item, body) => putAttachment(store, store.config.chunker, image, kind, item, body),
    getAttachment: (image, kind, item) => getAttachment(store, image, kind, item),
    listAttachments: (image) => listAttachments(store, image),
    gc: () => runGc(store),
    listNodes: async () => (await listNodes(store)).map(publicView),
    // No deploy reports reach a local store: only each node's last result shows.
    deploys: () => new LiveDeploys().rows(store),
    changeNode: async (name, settings, create) => publicView(await changeNode(store, name, settings, create)),
    deleteNode: (name) => removeNode(store, name),
    // Without a server, the BMCs are reached from this machine, with the credentials the store keeps.
    power: (name, action) => powerNode(store, name, action),
    identify: (query) => ('mac' in query ? identifyMac(store, query.mac) : identifyNode(store, query.node)),
    verify: () => runVerify(store),
    maintenance: () => lastMaintenance(store),
    history: async (name) => {
      if (!(await getNode(store, name))) throw new NodeNotFoundError(`no node named ${name}`, 'list nodes with: cloner nodes list');
      return nodeHistory(store, name);
    },
    group: (name, group, remove) => (remove ? removeFromGroup : addToGroup)(store, name, group),
    bytesMark: async () => (await store.stats()).packBytes,
    transfer: () => null,
    hold: () => store.guard(),
    close: () => store.close(),
  };
}

