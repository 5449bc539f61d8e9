-- Allow a client by exact address, IPv4 prefix or CIDR block. Once the
-- list is not empty, only matching clients may connect to the proxy port.
ADD CLIENT 127.0.0.1;
ADD CLIENT 192.168.1.;
ADD CLIENT 10.0.0.0/8;
SELECT * FROM clients;
ADD CLIENT localhost;
