/**
 * What the browser bundle gives for `@tensorflow/tfjs` (an esbuild alias in scripts/build-browser.ts):
 * the parts Cohort trains with — tfjs-core with its gradients and chained ops, and tfjs-layers —
 * without the converter, tfjs-data and the WebGL and cpu backends, which the browser client never
 * uses (the worker imports the wasm backend itself and selects it; a browser without WebAssembly is
 * refused before the worker starts). The worker shrinks from 1.72 to 1.26 MB minified.
 */
import '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
export * from '@tensorflow/tfjs-core';
export * from '@tensorflow/tfjs-layers';
