/** The CLI's backend on a cloner server: every operation is one typed API call (core/api). */
import { ApiClient } from '../core/api/client.ts';
import { API } from '../core/api/endpoints.ts';
import { ServerError, type HttpStore } from '../core/store/http.ts';
import type { Backend } from './backend.ts';

export async function remoteBackend(http: HttpStore): Promise<Backend> {
  const api = new ApiClient(http);
  const { chunker } = await api.call(API.config);
  const imageGone = (err: unknown) => err instanceof ServerError && err.code === 'IMAGE_NOT_FOUND';
  const layoutGone = (err: unknown) => err instanceof ServerError && err.code === 'LAYOUT_NOT_FOUND';
  return {
    where: `server ${http.url}`,
    chunks: http,
    chunker,
    getImage: (name) => api.call(API.getImage, { params: { name } }).catch((err) => (imageGone(err) ? undefined : Promise.reject(err))),
    listImages: () => api.call(API.listImages),
    usage: () => api.call(API.usage),
    commitRevision: async (name, input, create) => {
      await http.flush();
      return api.call(API.commitRevision, { params: { name }, body: { ...input, layout: input.layout ?? null, options: input.options ?? null, create } });
    },
    layoutExists: (name) => api.call(API.getLayout, { params: { name }, query: {} }).then(() => true, (err) => (layoutGone(err) ? false : Promise.reject(err))),
    loadLayout: (name, version) => api.call(API.getLayout, { params: { name }, query: version ? { version: String(version) } : {} }),
    // Checked here first for a precise local error; the server checks again.
    saveLayout: async (name, layout) => api.call(API.saveLayout, { params: { name }, body: (await import('../core/layout/model.ts')).parseLayout(layout) }),
    listLayouts: () => api.call(API.listLayouts),
    deleteLayoutVersion: (name, version) => api.call(API.deleteLayoutVersion, { params: { name, version: String(version) } }),
    rollbackLayout: (name, version) => api.call(API.rollbackLayout, { params: { name }, body: { version } }),
    deleteImage: async (name) => void (await api.call(API.deleteImage, { params: { name } })),
    putAttachment: async (image, kind, item, body) => (await api.upload(API.putAttachment, { params: { name: image, kind, item } }, body)).version,
    getAttachment: async (image, kind, item) => {
      const { body, headers } = await api.bytes(API.getAttachment, { params: { name: image, kind, item } });
      return { version: Number(headers.get('x-cloner-version')), body };
    },
    listAttachments: (image) => api.call(API.listAttachments, { params: { name: image } }),
    gc: () => api.call(API.gc),
    listNodes: () => api.call(API.listNodes),
    deploys: () => api.call(API.deploys),
    changeNode: (name, settings, create) => api.call(API.changeNode, { params: { name }, body: { settings, create } }),
    deleteNode: async (name) => void (await api.call(API.deleteNode, { params: { name } })),
    power: (name, action) => api.call(API.power, { params: { name }, body: { action } }),
    identify: (query) => api.call(API.identify, { query }),
    verify: () => api.call(API.verify),
    maintenance: () => api.call(API.maintenance),
    history: (name) => api.call(API.nodeHistory, { params: { name } }),
    group: (name, group, remove) => api.call(API.nodeGroup, { params: { name }, body: { group, remove } }),
    bytesMark: async () => http.uploadedBytes,
    transfer: () => ({ sent: http.uploadedBytes, sentRaw: http.uploadedRawBytes, alreadyStored: http.alreadyStoredBytes }),
    hold: () => ({ release: () => {} }),
    close: () => http.close(),
  };
}

