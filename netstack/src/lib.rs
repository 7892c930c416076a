//! The sans-IO TCP/IP engine. Not yet built: see the issue tracker.
