/** drift-redis-outage.test.ts again, on @parcel/watcher (see test/helpers/watch-backend.ts). */
process.env.FILESTORE_TEST_WATCH_BACKEND = 'parcel';
require('./drift-redis-outage.test');
