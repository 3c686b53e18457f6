# bash completion for supervise(1): its options, their arguments (signal
# names, --teardown-on events, --cgroup modes, capabilities, files), then
# COMMAND and its arguments, with COMMAND's own completion where the
# bash-completion package provides one.  Needs nothing but bash.

# Every option, as `supervise --help` lists them.
_supervise_options='-t --timeout -k --kill-after -s --signal --foreground
--preserve-status --parent-pid --ignore-parent-death --cancel-on-hangup
--cgroup -T --teardown --teardown-on --teardown-timeout --teardown-log
-l --lock -w --lock-wait --lock-ttl --etcd-cacert --etcd-cert --etcd-key
--etcd-user-file --caps --no-new-privs --status-file -q --quiet
-v --verbose -h --help -V --version'
# The options that take an argument, short ones without their dash.
_supervise_short_args='tksTlw'
_supervise_long_args='--timeout --kill-after --signal --parent-pid --cgroup
--teardown --teardown-on --teardown-timeout --teardown-log --lock
--lock-wait --lock-ttl --etcd-cacert --etcd-cert --etcd-key
--etcd-user-file --caps --status-file'
# Stop signals: 0, STOP, TSTP, TTIN, TTOU and CONT are refused.
_supervise_signals='HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2
PIPE ALRM TERM STKFLT CHLD URG XCPU XFSZ VTALRM PROF WINCH POLL PWR SYS
RTMIN RTMAX'
_supervise_events='timeout cancel failure success always'
_supervise_cgroup_modes='auto off require'
_supervise_caps='none cap_chown cap_dac_override cap_dac_read_search
cap_fowner cap_fsetid cap_kill cap_setgid cap_setuid cap_setpcap
cap_linux_immutable cap_net_bind_service cap_net_broadcast cap_net_admin
cap_net_raw cap_ipc_lock cap_ipc_owner cap_sys_module cap_sys_rawio
cap_sys_chroot cap_sys_ptrace cap_sys_pacct cap_sys_admin cap_sys_boot
cap_sys_nice cap_sys_resource cap_sys_time cap_sys_tty_config cap_mknod
cap_lease cap_audit_write cap_audit_control cap_setfcap cap_mac_override
cap_mac_admin cap_syslog cap_wake_alarm cap_block_suspend cap_audit_read
cap_perfmon cap_bpf cap_checkpoint_restore'

# Whether the long option $1 takes an argument.
_supervise_long_takes_arg()
{
	local o
	for o in $_supervise_long_args; do
		[[ $1 == "$o" ]] && return 0
	done
	return 1
}

# Whether the short-option cluster $1 (-s, -qs, not -qs9 or -tk) ends with
# an option whose argument is the next word; sets _supervise_letter to it.
_supervise_short_wants_next()
{
	local rest=${1#-}
	while [[ -n $rest ]]; do
		if [[ $_supervise_short_args == *"${rest:0:1}"* ]]; then
			_supervise_letter=${rest:0:1}
			[[ ${#rest} == 1 ]]
			return
		fi
		rest=${rest:1}
	done
	return 1
}

# Completes the last word of the comma list $2 from the words $1.
_supervise_comma_list()
{
	local prefix=
	[[ $2 == *,* ]] && prefix=${2%,*},
	COMPREPLY=($(compgen -W "$1" -P "$prefix" -- "${2##*,}"))
	compopt -o nospace 2>/dev/null
}

_supervise()
{
	local cur=${COMP_WORDS[COMP_CWORD]} opt= w i=1 _supervise_letter=
	COMPREPLY=()

	# Skip the options and their arguments to where COMMAND starts; bash
	# splits "--signal=TERM" into "--signal", "=" and "TERM".
	while ((i < COMP_CWORD)); do
		w=${COMP_WORDS[i]}
		case $w in
		--)
			((i++))
			break
			;;
		--*)
			if _supervise_long_takes_arg "$w"; then
				[[ ${COMP_WORDS[i + 1]} == = ]] && ((i++))
				((i++))
			fi
			;;
		-?*)
			# A cluster such as -qv or -qt5: the first letter that
			# takes an argument takes the rest, or the next word.
			_supervise_short_wants_next "$w" && ((i++))
			;;
		*)
			break
			;;
		esac
		((i++))
	done
	if ((i < COMP_CWORD)) || { ((i == COMP_CWORD)) &&
		[[ ${COMP_WORDS[i - 1]} == -- ]]; }; then
		# COMMAND or one of its arguments.
		if type _command_offset >/dev/null 2>&1; then
			_command_offset "$i"
		elif ((i == COMP_CWORD)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
		return 0
	fi

	# The option whose argument is being completed, if any.
	if [[ $cur == = ]]; then
		opt=${COMP_WORDS[COMP_CWORD - 1]}
		cur=
	elif ((COMP_CWORD > 1)) && [[ ${COMP_WORDS[COMP_CWORD - 1]} == = ]]; then
		opt=${COMP_WORDS[COMP_CWORD - 2]}
	elif ((COMP_CWORD > 1)); then
		w=${COMP_WORDS[COMP_CWORD - 1]}
		if [[ $w == --* ]]; then
			_supervise_long_takes_arg "$w" && opt=$w
		elif [[ $w == -?* ]] && _supervise_short_wants_next "$w"; then
			opt=-$_supervise_letter
		fi
	fi
	case $opt in
	-s | --signal)
		if [[ $cur == [Ss][Ii][Gg]* ]]; then
			COMPREPLY=($(compgen -W "$_supervise_signals" -P SIG -- "${cur:3}"))
		else
			COMPREPLY=($(compgen -W "$_supervise_signals" -- "$cur"))
		fi
		return 0
		;;
	--teardown-on)
		_supervise_comma_list "$_supervise_events" "$cur"
		return 0
		;;
	--cgroup)
		COMPREPLY=($(compgen -W "$_supervise_cgroup_modes" -- "$cur"))
		return 0
		;;
	--caps)
		_supervise_comma_list "$_supervise_caps" "$cur"
		return 0
		;;
	-l | --lock | --status-file | --teardown-log | --etcd-cacert | \
		--etcd-cert | --etcd-key | --etcd-user-file)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	-T | --teardown)
		COMPREPLY=($(compgen -c -- "$cur"))
		return 0
		;;
	--parent-pid)
		COMPREPLY=($(compgen -W "$(cd /proc && echo [0-9]*)" -- "$cur"))
		return 0
		;;
	-*)
		# A duration: nothing to offer.
		return 0
		;;
	esac

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$_supervise_options --" -- "$cur"))
	else
		COMPREPLY=($(compgen -c -- "$cur"))
	fi
	return 0
}

complete -F _supervise supervise
