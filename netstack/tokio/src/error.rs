//! How the stack's errors read as `std::io::Error`s, the way std's
//! `TcpStream` reports the same conditions.

use std::io::{Error, ErrorKind};

use netstack::{ConnError, ConnectError, Events, ListenError};

/// A connection's error as std would report it.
pub(crate) fn conn_error(e: ConnError) -> Error {
    let kind = match e {
        ConnError::WouldBlock => ErrorKind::WouldBlock,
        ConnError::Closed => ErrorKind::BrokenPipe,
        ConnError::Reset => ErrorKind::ConnectionReset,
        ConnError::Refused => ErrorKind::ConnectionRefused,
        ConnError::TimedOut => ErrorKind::TimedOut,
        ConnError::Aborted => ErrorKind::ConnectionAborted,
    };
    Error::new(kind, e)
}

/// The error a connection's last events name, if they name one.
pub(crate) fn ended_with(events: Events) -> Option<ConnError> {
    if !events.contains(Events::RESET) {
        return None;
    }
    Some(if events.contains(Events::REFUSED) {
        ConnError::Refused
    } else if events.contains(Events::TIMED_OUT) {
        ConnError::TimedOut
    } else {
        ConnError::Reset
    })
}

pub(crate) fn connect_error(e: ConnectError) -> Error {
    let kind = match &e {
        ConnectError::NoLocalAddress(_) | ConnectError::Ports(_) => ErrorKind::AddrNotAvailable,
        ConnectError::NoSuchWorker(_) => ErrorKind::InvalidInput,
        ConnectError::AddrInUse(_) => ErrorKind::AddrInUse,
    };
    Error::new(kind, e)
}

pub(crate) fn listen_error(e: ListenError) -> Error {
    let kind = match e {
        ListenError::AddrNotAvailable(_) => ErrorKind::AddrNotAvailable,
        ListenError::PortZero => ErrorKind::InvalidInput,
        ListenError::AddrInUse(_) => ErrorKind::AddrInUse,
    };
    Error::new(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_events_name_the_error_std_would_report() {
        let reset = Events::CLOSED | Events::RESET;
        assert_eq!(ended_with(reset), Some(ConnError::Reset));
        assert_eq!(
            ended_with(reset | Events::REFUSED),
            Some(ConnError::Refused)
        );
        assert_eq!(
            ended_with(reset | Events::TIMED_OUT),
            Some(ConnError::TimedOut)
        );
        assert_eq!(ended_with(Events::CLOSED), None);
        assert_eq!(
            conn_error(ConnError::Refused).kind(),
            ErrorKind::ConnectionRefused
        );
        assert_eq!(conn_error(ConnError::TimedOut).kind(), ErrorKind::TimedOut);
        assert_eq!(
            conn_error(ConnError::Reset).kind(),
            ErrorKind::ConnectionReset
        );
        assert_eq!(conn_error(ConnError::Closed).kind(), ErrorKind::BrokenPipe);
    }
}
