import { defineConfig } from 'vite';

// The page is static: `vite build` writes dist/, which `edgeforge serve-web` serves beside the artifacts.
export default defineConfig({
  base: './', // relative asset URLs: the page works under any path prefix
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022', // transformers.js uses top-level await and class fields
    chunkSizeWarningLimit: 2048, // transformers.js is one ~1 MB module; splitting it gains nothing here
  },
});
