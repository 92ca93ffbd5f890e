/* rand kernels (to be written). */
