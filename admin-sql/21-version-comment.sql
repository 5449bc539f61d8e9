-- What the mysql/mariadb CLI asks on connect.
select @@version_comment limit 1;
