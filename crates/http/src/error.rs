//! Why a request could not be read, and the one place that maps each reason to a status.
//!
//! Parsing, framing and deadline checks all report a [`ProtocolError`]; the server answers it
//! with [`ProtocolError::status`] through `Handler::error_response` and closes the connection.
//! Keeping the mapping in one `match` keeps the answers consistent and reviewable.

/// A request the server refuses to hand to the application.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("malformed request line")]
    BadRequestLine,
    #[error("malformed http version")]
    BadVersion,
    #[error("http version not supported")]
    UnsupportedVersion,
    #[error("request line too long")]
    RequestLineTooLong,
    #[error("invalid header name")]
    BadHeaderName,
    #[error("invalid header value")]
    BadHeaderValue,
    #[error("bare cr or lf in request head")]
    BareLineEnding,
    #[error("too many header fields")]
    TooManyFields,
    #[error("header field too large")]
    FieldTooLarge,
    #[error("request head too large")]
    HeadTooLarge,
    #[error("missing host header")]
    MissingHost,
    #[error("duplicate {0} header")]
    DuplicateHeader(&'static str),
    #[error("invalid content-length")]
    BadContentLength,
    #[error("both content-length and transfer-encoding")]
    LengthWithTransferEncoding,
    #[error("transfer-encoding on http/1.0")]
    TransferEncodingOnHttp10,
    #[error("invalid transfer-encoding")]
    BadTransferEncoding,
    #[error("unsupported transfer coding")]
    UnknownTransferCoding,
    #[error("unsupported expectation")]
    UnsupportedExpectation,
    #[error("invalid request target")]
    BadTarget,
    #[error("invalid path")]
    BadPath,
    #[error("malformed chunked body: {0}")]
    BadChunk(&'static str),
    #[error("forbidden trailer field")]
    ForbiddenTrailer,
    #[error("request body too large")]
    BodyTooLarge,
    #[error("incomplete request")]
    Incomplete,
    #[error("timed out reading request head")]
    HeadTimeout,
    #[error("timed out reading request body")]
    BodyTimeout,
}

impl ProtocolError {
    /// The status the server answers this error with.
    pub fn status(&self) -> u16 {
        use ProtocolError::*;
        match self {
            BadRequestLine
            | BadVersion
            | BadHeaderName
            | BadHeaderValue
            | BareLineEnding
            | MissingHost
            | DuplicateHeader(_)
            | BadContentLength
            | LengthWithTransferEncoding
            | TransferEncodingOnHttp10
            | BadTransferEncoding
            | BadTarget
            | BadPath
            | BadChunk(_)
            | ForbiddenTrailer
            | Incomplete => 400,
            HeadTimeout | BodyTimeout => 408,
            BodyTooLarge => 413,
            RequestLineTooLong => 414,
            UnsupportedExpectation => 417,
            TooManyFields | FieldTooLarge | HeadTooLarge => 431,
            UnknownTransferCoding => 501,
            UnsupportedVersion => 505,
        }
    }
}
